package projection

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
	"github.com/vellum-db/vellum/projection/jsondiff"
)

// History entries: the value under (document id, seq) says what event seq
// did to the document and where to find that version.
//
//	'c' ‖ uvarint i          the version is the document of effect i of event seq
//	'p' ‖ uvarint i          the version is the previous one with the diff of effect i applied
//	's' ‖ uvarint i ‖ JSON   as 'p', and this is a snapshot of the resulting version
//	'x' ‖ uvarint i          effect i of event seq deleted the document
const (
	histDoc      = 'c'
	histPatch    = 'p'
	histSnapshot = 's'
	histDeleted  = 'x'
)

// pending remembers the documents written into a batch that has not been
// committed yet, for a later effect in the same batch that needs the
// previous version (a diff). A nil value means deleted.
type pending map[string][]byte

// Apply writes into b what event ev does to the projection: for each effect,
// the new current document (or its deletion) and its history entry. A
// document changed by a diff is read at its previous version from b when b
// is indexed (pebble.DB.NewIndexedBatch), otherwise from the database (the
// engine applies each batch to the memtable before building the next one, so
// earlier events are visible there); effects of ev itself on the same
// document are seen in either case. The resulting bytes are the effect's
// document exactly, or encoding/json's encoding of the diff applied to the
// previous version. Nothing is visible until the caller commits b.
func (s *Store) Apply(b *pebble.Batch, ev *eventlog.Event) error {
	var p pending
	if len(ev.Effects) > 1 {
		p = make(pending, len(ev.Effects))
	}
	return s.apply(b, ev, p)
}

func (s *Store) apply(b *pebble.Batch, ev *eventlog.Event, p pending) error {
	var hist []byte
	for i := range ev.Effects {
		ef := &ev.Effects[i]
		id := ef.DocID
		if id == "" || strings.IndexByte(id, 0) >= 0 {
			return s.invalid(id, ev.Seq, "effect %d: document id is empty or holds a zero byte", i)
		}
		hist = hist[:0]
		var value []byte
		switch {
		case ef.Operation == eventlog.OpDelete:
			hist = append(hist, histDeleted)
			hist = binary.AppendUvarint(hist, uint64(i))
		case ef.Doc != nil:
			hist = append(hist, histDoc)
			hist = binary.AppendUvarint(hist, uint64(i))
			value = appendDocValue(make([]byte, 0, len(ef.Doc)+16), docHeader{seq: ev.Seq}, ef.Doc)
		case ef.Diff != nil:
			prev, ok, err := s.previous(b, p, id)
			if err != nil {
				return err
			}
			if !ok {
				return s.invalid(id, ev.Seq, "effect %d: a diff, but the document has no previous version", i)
			}
			ph, prevDoc, err := parseDocValue(prev)
			if err != nil {
				return s.corrupt(id, ev.Seq, "previous version: %v", err)
			}
			doc, err := applyDiff(prevDoc, ef.Diff)
			if err != nil {
				return s.invalid(id, ev.Seq, "effect %d: applying the diff to the previous version (event %d): %v", i, ph.seq, err)
			}
			h := docHeader{seq: ev.Seq, revsSinceFull: ph.revsSinceFull + 1, bytesSinceFull: ph.bytesSinceFull + uint64(len(ef.Diff))}
			if h.bytesSinceFull >= uint64(len(doc)) || h.revsSinceFull >= uint64(s.policy.MaxRevisions) {
				h.revsSinceFull, h.bytesSinceFull = 0, 0
				hist = append(hist, histSnapshot)
				hist = binary.AppendUvarint(hist, uint64(i))
				hist = append(hist, doc...)
			} else {
				hist = append(hist, histPatch)
				hist = binary.AppendUvarint(hist, uint64(i))
			}
			value = appendDocValue(make([]byte, 0, len(doc)+16), h, doc)
		default:
			return s.invalid(id, ev.Seq, "effect %d: a %s without document or diff", i, ef.Operation)
		}
		key := s.docKey(id)
		var err error
		if value == nil {
			err = b.Delete(key, nil)
		} else {
			err = b.Set(key, value, nil)
		}
		if err == nil {
			err = b.Set(s.historyKey(id, ev.Seq), hist, nil)
		}
		if err != nil {
			return err
		}
		if p != nil {
			p[id] = value
		}
	}
	return nil
}

// previous returns the stored value of document id as the batch being built
// sees it.
func (s *Store) previous(b *pebble.Batch, p pending, id string) ([]byte, bool, error) {
	if v, ok := p[id]; ok {
		return v, v != nil, nil
	}
	get := s.pdb.Get
	if b.Indexed() {
		get = b.Get
	}
	v, closer, err := get(s.docKey(id))
	if err == pebble.ErrNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return bytes.Clone(v), true, nil
}

// applyDiff returns the JSON of doc with the jsondiff patch diff applied.
func applyDiff(doc, diff []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("previous version is not JSON: %w", err)
	}
	var patch jsondiff.Patch
	if err := patch.UnmarshalJSON(diff); err != nil {
		return nil, err
	}
	nv, err := patch.Apply(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(nv)
}
