package projection

import (
	"bytes"
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
)

// ScanAt calls fn with the id and JSON of every document that existed just
// after event seq (every document as stored: drafts and versions
// included), in the order of id, starting after the id after ("" starts at
// the first), until fn returns an error (which ScanAt returns). doc is only
// valid during the call.
//
// The scan reads one consistent snapshot of the store. When seq is the
// log's head in that snapshot, it is a scan of the current documents.
// Otherwise it walks the history index once, id by id: a document whose
// last change at or before seq is also its last change overall is read from
// the current documents; one changed after seq is reconstructed through the
// index (AtSeq); one deleted at or before seq, or created after it, is
// skipped.
func (s *Store) ScanAt(seq uint64, after string, fn func(id string, doc []byte) error) error {
	snap := s.pdb.NewSnapshot()
	defer snap.Close()
	head, err := s.snapshotHead(snap)
	if err != nil {
		return err
	}
	if seq >= head {
		return s.scanCurrent(snap, after, fn)
	}
	return s.scanHistory(snap, seq, after, fn)
}

// snapshotHead returns the sequence number of the last event in snap.
func (s *Store) snapshotHead(snap *pebble.Snapshot) (uint64, error) {
	lower := eventlog.KeyPrefix(s.dataset, eventlog.SpaceEvents)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: eventlog.KeyUpperBound(s.dataset, eventlog.SpaceEvents)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	k := it.Key()
	if len(k) != len(lower)+8 {
		return 0, s.corrupt("", 0, "malformed event key %x", k)
	}
	return binary.BigEndian.Uint64(k[len(lower):]), nil
}

// after returns the smallest key of keyspace prefix beyond id (and, for the
// history keyspace, beyond all of id's entries): prefix ‖ id ‖ 0x01. Ids
// never hold a zero byte, so nothing sorts between.
func afterKey(prefix []byte, id string) []byte {
	k := make([]byte, 0, len(prefix)+len(id)+1)
	k = append(k, prefix...)
	k = append(k, id...)
	return append(k, 1)
}

func (s *Store) scanCurrent(snap *pebble.Snapshot, after string, fn func(id string, doc []byte) error) error {
	lower := s.docs
	if after != "" {
		lower = append(append(bytes.Clone(s.docs), after...), 0)
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: eventlog.KeyUpperBound(s.dataset, eventlog.SpaceDocs)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		id := string(it.Key()[len(s.docs):])
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		h, doc, err := parseDocValue(v)
		if err != nil {
			return s.corrupt(id, h.seq, "current document: %v", err)
		}
		if err := fn(id, doc); err != nil {
			return err
		}
	}
	return it.Error()
}

func (s *Store) scanHistory(snap *pebble.Snapshot, seq uint64, after string, fn func(id string, doc []byte) error) error {
	lower := s.history
	if after != "" {
		lower = afterKey(s.history, after)
	}
	hist, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: eventlog.KeyUpperBound(s.dataset, eventlog.SpaceHistory)})
	if err != nil {
		return err
	}
	defer hist.Close()
	docs, err := snap.NewIter(&pebble.IterOptions{LowerBound: s.docs, UpperBound: eventlog.KeyUpperBound(s.dataset, eventlog.SpaceDocs)})
	if err != nil {
		return err
	}
	defer docs.Close()
	docsOK := docs.First()

	// The entries of one id are contiguous and ascend by seq. Walking them
	// with Next, remember for the current id whether it has an entry at or
	// before seq (and the kind of the last one) and whether one follows;
	// once one follows, seek past the id's remaining entries.
	var (
		id      []byte // the current id
		have    bool   // an entry at or before seq
		deleted bool   // ... and the last such entry is a deletion
		later   bool   // an entry after seq
		last    []byte // the value of the last entry at or before seq
		lastSeq uint64 // ... and its sequence number
		dk      []byte // scratch: a current-document key
		// The event of the last whole-document version read: the documents
		// one transaction wrote are neighbours in a scan more often than not.
		cached *eventlog.Event
	)
	// version returns the document as of seq when it changed after seq:
	// straight from the entry when it holds the whole document (an effect
	// with the document, or a snapshot), else through AtSeq.
	version := func() ([]byte, bool, error) {
		e, err := s.parseHistory(string(id), s.historyKey(string(id), lastSeq), last)
		if err != nil {
			return nil, false, err
		}
		switch e.kind {
		case histSnapshot:
			return e.doc, true, nil
		case histDoc:
			if cached == nil || cached.Seq != e.seq {
				if cached, err = s.log.Get(e.seq); err != nil {
					return nil, false, err
				}
			}
			if e.effect < len(cached.Effects) && cached.Effects[e.effect].DocID == string(id) && cached.Effects[e.effect].Doc != nil {
				return cached.Effects[e.effect].Doc, true, nil
			}
		}
		return s.AtSeq(string(id), seq)
	}
	emit := func() error {
		if !have || deleted {
			return nil // created after seq, or deleted at or before it
		}
		if later {
			doc, found, err := version()
			if err != nil || !found {
				return err
			}
			return fn(string(id), doc)
		}
		// Unchanged since: the current document is that version. Current
		// documents are in id order too: walk them forward.
		dk = append(append(dk[:0], s.docs...), id...)
		for docsOK && bytes.Compare(docs.Key(), dk) < 0 {
			docsOK = docs.Next()
		}
		if !docsOK || !bytes.Equal(docs.Key(), dk) {
			if err := docs.Error(); err != nil {
				return err
			}
			return s.corrupt(string(id), seq, "the history index says the document exists, but it has no current version")
		}
		v, err := docs.ValueAndErr()
		if err != nil {
			return err
		}
		h, doc, err := parseDocValue(v)
		if err != nil {
			return s.corrupt(string(id), h.seq, "current document: %v", err)
		}
		return fn(string(id), doc)
	}
	ok := hist.First()
	for ok {
		k := hist.Key()
		if len(k) < len(s.history)+1+8 || k[len(k)-9] != 0 {
			return s.corrupt("", 0, "malformed history key %x", k)
		}
		kid := k[len(s.history) : len(k)-9]
		if id == nil || !bytes.Equal(kid, id) {
			if id != nil {
				if err := emit(); err != nil {
					return err
				}
			}
			id = append(id[:0], kid...)
			if id == nil {
				id = []byte{} // never nil once set
			}
			have, deleted, later = false, false, false
		}
		if binary.BigEndian.Uint64(k[len(k)-8:]) > seq {
			later = true
			ok = hist.SeekGE(afterKey(s.history, string(id)))
			continue
		}
		v, err := hist.ValueAndErr()
		if err != nil {
			return err
		}
		if len(v) == 0 {
			return s.corrupt(string(id), seq, "empty history entry")
		}
		have, deleted = true, v[0] == histDeleted
		last, lastSeq = append(last[:0], v...), binary.BigEndian.Uint64(k[len(k)-8:])
		ok = hist.Next()
	}
	if err := hist.Error(); err != nil {
		return err
	}
	if id != nil {
		return emit()
	}
	return nil
}
