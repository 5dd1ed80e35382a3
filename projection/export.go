package projection

import (
	"bytes"
	"encoding/binary"
	"math"

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

	var key []byte // scratch
	for ok := hist.First(); ok; {
		k := hist.Key()
		if len(k) < len(s.history)+1+8 || k[len(k)-9] != 0 {
			return s.corrupt("", 0, "malformed history key %x", k)
		}
		id := string(k[len(s.history) : len(k)-9])
		first := binary.BigEndian.Uint64(k[len(k)-8:])
		next := afterKey(s.history, id)
		if first > seq {
			// Created after seq.
			ok = hist.SeekGE(next)
			continue
		}
		// The last entry at or before seq, and whether a later one exists.
		key = append(append(append(key[:0], s.history...), id...), 0)
		prefixLen := len(key)
		later := false
		var upper []byte
		if seq < math.MaxUint64 {
			upper = binary.BigEndian.AppendUint64(key, seq+1)
			if hist.SeekGE(upper) {
				hk := hist.Key()
				later = len(hk) == prefixLen+8 && bytes.Equal(hk[:prefixLen], upper[:prefixLen])
			}
		} else {
			upper = next
		}
		if !hist.SeekLT(upper) {
			if err := hist.Error(); err != nil {
				return err
			}
			return s.corrupt(id, seq, "history entry vanished during the scan")
		}
		if seq < math.MaxUint64 {
			key = upper // keep the grown scratch buffer; never alias next
		}
		v, err := hist.ValueAndErr()
		if err != nil {
			return err
		}
		if len(v) == 0 {
			return s.corrupt(id, seq, "empty history entry")
		}
		switch {
		case v[0] == histDeleted:
			// Absent just after seq.
		case !later:
			// Unchanged since: the current document is that version.
			dk := append(append(key[:0], s.docs...), id...)
			if !docs.SeekGE(dk) || !bytes.Equal(docs.Key(), dk) {
				if err := docs.Error(); err != nil {
					return err
				}
				return s.corrupt(id, seq, "the history index says the document exists, but it has no current version")
			}
			dv, err := docs.ValueAndErr()
			if err != nil {
				return err
			}
			h, doc, err := parseDocValue(dv)
			if err != nil {
				return s.corrupt(id, h.seq, "current document: %v", err)
			}
			if err := fn(id, doc); err != nil {
				return err
			}
		default:
			doc, found, err := s.AtSeq(id, seq)
			if err != nil {
				return err
			}
			if found {
				if err := fn(id, doc); err != nil {
					return err
				}
			}
		}
		ok = hist.SeekGE(next)
	}
	return hist.Error()
}
