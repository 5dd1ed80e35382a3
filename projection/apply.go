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

// pending remembers the documents written into batches that may not be
// committed yet (the one being built and, during Rebuild, the one being
// committed), for a later effect that needs the previous version (a diff).
// A nil value means deleted. Values alias the batches' memory, which is
// never overwritten before the batch is reset, and the maps are cleared
// before that.
type pending struct {
	cur, prev map[string][]byte
}

func (p *pending) lookup(id string) ([]byte, bool) {
	if v, ok := p.cur[id]; ok {
		return v, true
	}
	v, ok := p.prev[id]
	return v, ok
}

// applier writes the effects of events into a batch, reusing its buffers.
type applier struct {
	s    *Store
	key  []byte
	hist []byte
}

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
		p.cur = make(map[string][]byte, len(ev.Effects))
	}
	a := applier{s: s}
	return a.apply(b, ev, &p)
}

func (a *applier) apply(b *pebble.Batch, ev *eventlog.Event, p *pending) error {
	s := a.s
	for i := range ev.Effects {
		ef := &ev.Effects[i]
		id := ef.DocID
		if id == "" || strings.IndexByte(id, 0) >= 0 {
			return s.invalid(id, ev.Seq, "effect %d: document id is empty or holds a zero byte", i)
		}
		a.hist = a.hist[:0]
		var (
			h   docHeader
			doc []byte
		)
		switch {
		case ef.Operation == eventlog.OpDelete:
			a.hist = append(a.hist, histDeleted)
			a.hist = binary.AppendUvarint(a.hist, uint64(i))
		case ef.Doc != nil:
			a.hist = append(a.hist, histDoc)
			a.hist = binary.AppendUvarint(a.hist, uint64(i))
			h, doc = docHeader{seq: ev.Seq}, ef.Doc
		case ef.Diff != nil:
			prev, ok, err := a.previous(b, p, id)
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
			if doc, err = applyDiff(prevDoc, ef.Diff); err != nil {
				return s.invalid(id, ev.Seq, "effect %d: applying the diff to the previous version (event %d): %v", i, ph.seq, err)
			}
			h = docHeader{seq: ev.Seq, revsSinceFull: ph.revsSinceFull + 1, bytesSinceFull: ph.bytesSinceFull + uint64(len(ef.Diff))}
			if h.bytesSinceFull >= uint64(len(doc)) || h.revsSinceFull >= uint64(s.policy.MaxRevisions) {
				h.revsSinceFull, h.bytesSinceFull = 0, 0
				a.hist = append(a.hist, histSnapshot)
				a.hist = binary.AppendUvarint(a.hist, uint64(i))
				a.hist = append(a.hist, doc...)
			} else {
				a.hist = append(a.hist, histPatch)
				a.hist = binary.AppendUvarint(a.hist, uint64(i))
			}
		default:
			return s.invalid(id, ev.Seq, "effect %d: a %s without document or diff", i, ef.Operation)
		}
		a.key = append(append(a.key[:0], s.docs...), id...)
		var value []byte
		if doc == nil {
			if err := b.Delete(a.key, nil); err != nil {
				return err
			}
		} else {
			var hdr [1 + 3*binary.MaxVarintLen64]byte
			hb := appendDocValue(hdr[:0], h, nil)
			op := b.SetDeferred(len(a.key), len(hb)+len(doc))
			copy(op.Key, a.key)
			copy(op.Value, hb)
			copy(op.Value[len(hb):], doc)
			if err := op.Finish(); err != nil {
				return err
			}
			value = op.Value
		}
		a.key = append(append(a.key[:0], s.history...), id...)
		a.key = binary.BigEndian.AppendUint64(append(a.key, 0), ev.Seq)
		if err := b.Set(a.key, a.hist, nil); err != nil {
			return err
		}
		if p.cur != nil {
			p.cur[id] = value
		}
	}
	return nil
}

// previous returns the stored value of document id as the batch being built
// sees it.
func (a *applier) previous(b *pebble.Batch, p *pending, id string) ([]byte, bool, error) {
	if v, ok := p.lookup(id); ok {
		return v, v != nil, nil
	}
	get := a.s.pdb.Get
	if b.Indexed() {
		get = b.Get
	}
	a.key = append(append(a.key[:0], a.s.docs...), id...)
	v, closer, err := get(a.key)
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
	v, err := patchInPlace(v, diff)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// patchInPlace returns v with the jsondiff patch diff applied, modifying v,
// which the caller owns (it decoded it for the purpose) and discards if an
// error is returned. jsondiff.Patch.Apply never modifies its input, so it
// copies every object on a changed path; for a document with many members
// that copy dominates replaying a run of diffs. When the patch changes
// members of the top-level object (JSON form ["o", {name: change, ...}]),
// patchInPlace adds, removes or replaces those members in v itself and has
// jsondiff apply each member's change to the member's value; any other
// patch is applied whole by jsondiff. The result is the same either way.
func patchInPlace(v any, diff []byte) (any, error) {
	m, isObject := v.(map[string]any)
	var parts []json.RawMessage
	if !isObject || json.Unmarshal(diff, &parts) != nil || len(parts) != 2 || string(parts[0]) != `"o"` {
		return applyWhole(v, diff)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(parts[1], &members); err != nil {
		return applyWhole(v, diff) // jsondiff reports the malformed patch
	}
	for name, change := range members {
		var c []json.RawMessage
		if err := json.Unmarshal(change, &c); err != nil || len(c) == 0 {
			return nil, malformedPatch(name, "a change must be a non-empty array")
		}
		cur, present := m[name]
		switch string(c[0]) {
		case `"+"`, `"-"`:
			if len(c) != 2 {
				return nil, malformedPatch(name, fmt.Sprintf("a %s change has 2 elements, found %d", c[0], len(c)))
			}
			var x any
			if err := json.Unmarshal(c[1], &x); err != nil {
				return nil, malformedPatch(name, err.Error())
			}
			if string(c[0]) == `"+"` {
				if present {
					return nil, patchMismatch(name, "expected no member, found one")
				}
				m[name] = x
				continue
			}
			if !present || !jsondiff.Equal(cur, x) {
				return nil, patchMismatch(name, "the member to remove is absent or differs")
			}
			delete(m, name)
		default:
			if !present {
				return nil, patchMismatch(name, "expected a member, found none")
			}
			var p jsondiff.Patch
			if err := p.UnmarshalJSON(change); err != nil {
				return nil, err
			}
			x, err := p.Apply(cur)
			if err != nil {
				return nil, err
			}
			m[name] = x
		}
	}
	return m, nil
}

func applyWhole(v any, diff []byte) (any, error) {
	var p jsondiff.Patch
	if err := p.UnmarshalJSON(diff); err != nil {
		return nil, err
	}
	return p.Apply(v)
}

func pointer(name string) string {
	return "/" + strings.ReplaceAll(strings.ReplaceAll(name, "~", "~0"), "/", "~1")
}

func malformedPatch(name, desc string) error {
	return &jsondiff.Error{Code: jsondiff.CodeMalformedPatch, Path: pointer(name), Description: desc}
}

func patchMismatch(name, desc string) error {
	return &jsondiff.Error{Code: jsondiff.CodePatchMismatch, Path: pointer(name), Description: desc}
}
