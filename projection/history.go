package projection

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
)

// historyEntry is a decoded history value.
type historyEntry struct {
	seq    uint64
	kind   byte
	effect int
	doc    []byte // histSnapshot only
}

func (s *Store) parseHistory(id string, key, v []byte) (historyEntry, error) {
	var e historyEntry
	pfx := len(s.history) + len(id) + 1
	if len(key) != pfx+8 {
		return e, s.corrupt(id, 0, "malformed history key %x", key)
	}
	e.seq = binary.BigEndian.Uint64(key[pfx:])
	if len(v) < 2 {
		return e, s.corrupt(id, e.seq, "history entry of %d bytes", len(v))
	}
	e.kind = v[0]
	i, n := binary.Uvarint(v[1:])
	if n <= 0 || i > 1<<31 {
		return e, s.corrupt(id, e.seq, "history entry with a malformed effect index")
	}
	e.effect = int(i)
	switch e.kind {
	case histDoc, histPatch, histDeleted:
		if len(v) != 1+n {
			return e, s.corrupt(id, e.seq, "history entry %q with %d trailing bytes", e.kind, len(v)-1-n)
		}
	case histSnapshot:
		e.doc = bytes.Clone(v[1+n:])
	default:
		return e, s.corrupt(id, e.seq, "history entry of unknown kind %q", e.kind)
	}
	return e, nil
}

// AtSeq returns document id as it was just after event seq (its latest
// version written by an event up to seq), and whether it existed then. It
// seeks the document's history index to the last entry at or before seq
// and reconstructs that version from the nearest full version before it
// (a snapshot or an effect with the whole document), replaying at most
// SnapshotPolicy.MaxRevisions-1 diffs.
func (s *Store) AtSeq(id string, seq uint64) ([]byte, bool, error) {
	lower := s.historyPrefix(id)
	var upper []byte
	if seq == math.MaxUint64 {
		upper = append(bytes.Clone(lower[:len(lower)-1]), 1)
	} else {
		upper = binary.BigEndian.AppendUint64(bytes.Clone(lower), seq+1)
	}
	it, err := s.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	if !it.Last() {
		return nil, false, it.Error()
	}
	var patches []historyEntry // newest first
	for ok := true; ok; ok = it.Prev() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, false, err
		}
		e, err := s.parseHistory(id, it.Key(), v)
		if err != nil {
			return nil, false, err
		}
		switch e.kind {
		case histDeleted:
			if len(patches) == 0 {
				return nil, false, nil
			}
			return nil, false, s.corrupt(id, e.seq, "a diff (event %d) follows a deletion", patches[len(patches)-1].seq)
		case histSnapshot:
			if len(patches) == 0 {
				return e.doc, true, nil
			}
			return s.replay(id, e.doc, patches)
		case histDoc:
			ef, err := s.effect(id, e)
			if err != nil {
				return nil, false, err
			}
			if ef.Doc == nil {
				return nil, false, s.corrupt(id, e.seq, "history says effect %d holds the document, but it does not", e.effect)
			}
			if len(patches) == 0 {
				return ef.Doc, true, nil
			}
			return s.replay(id, ef.Doc, patches)
		case histPatch:
			patches = append(patches, e)
		}
	}
	if err := it.Error(); err != nil {
		return nil, false, err
	}
	return nil, false, s.corrupt(id, patches[len(patches)-1].seq, "a diff with no full version before it")
}

// effect returns the effect a history entry points to.
func (s *Store) effect(id string, e historyEntry) (*eventlog.Effect, error) {
	ev, err := s.log.Get(e.seq)
	if err != nil {
		return nil, err
	}
	if e.effect >= len(ev.Effects) || ev.Effects[e.effect].DocID != id {
		return nil, s.corrupt(id, e.seq, "history points to effect %d, which is not about this document", e.effect)
	}
	return &ev.Effects[e.effect], nil
}

// replay applies the diffs of patches (newest first) to base: member by
// member when they all are of that kind (memberReplay), else through
// lazyDoc.
func (s *Store) replay(id string, base []byte, patches []historyEntry) ([]byte, bool, error) {
	diffs, err := s.diffsOf(id, patches)
	if err != nil {
		return nil, false, err
	}
	if doc, ok := memberReplay(base, diffs); ok {
		return doc, true, nil
	}
	var d lazyDoc
	if err := d.init(base); err != nil {
		return nil, false, s.corrupt(id, 0, "stored version is not JSON: %v", err)
	}
	for _, e := range slices.Backward(patches) {
		ef, err := s.effect(id, e)
		if err != nil {
			return nil, false, err
		}
		if ef.Diff == nil {
			return nil, false, s.corrupt(id, e.seq, "history says effect %d holds a diff, but it does not", e.effect)
		}
		if err := d.patch(ef.Diff); err != nil {
			return nil, false, s.corrupt(id, e.seq, "diff of effect %d does not fit the previous version: %v", e.effect, err)
		}
	}
	doc, err := d.marshal()
	if err != nil {
		return nil, false, err
	}
	return doc, true, nil
}

// AtRev returns document id at revision rev: the version written by the
// transaction whose id is rev (a document's _rev is the id of the
// transaction that wrote it). It is found through the log's idempotency
// index (rev → seq) and then the history index; ok is false if that
// transaction did not write the document (or deleted it).
func (s *Store) AtRev(id, rev string) ([]byte, bool, error) {
	seq, ok, err := s.log.LookupTx(rev)
	if err != nil || !ok {
		return nil, false, err
	}
	_, closer, err := s.pdb.Get(s.historyKey(id, seq))
	if err == pebble.ErrNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	closer.Close()
	return s.AtSeq(id, seq)
}

// AtTime returns document id as it was at time t (after every event at or
// before t), found through the log's time index and then the history
// index.
func (s *Store) AtTime(id string, t time.Time) ([]byte, bool, error) {
	seq, err := s.log.SeqAtTime(t)
	if err != nil || seq == 0 {
		return nil, false, err
	}
	return s.AtSeq(id, seq)
}
