package projection

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
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

	// held, when not nil, keeps the current documents in memory instead of
	// writing each version into the batch (Rebuild): a document that many
	// events change is written once, by flushHeld, and a diff finds its
	// previous version here. A nil value means deleted. Documents not in
	// held are read from the database, which holds everything flushed.
	held      map[string][]byte
	heldBytes int

	unpublished Unpublished // see ApplyResults; nil in Rebuild
	values      [][]byte    // if not nil, the stored value of each effect (ApplyResults)
}

// heldOverhead approximates the memory of one entry of applier.held besides
// its id and value.
const heldOverhead = 64

// Apply writes into b what event ev does to the projection: for each effect,
// the new current document (or its deletion) and its history entry. A
// document changed by a diff is read at its previous version from b when b
// is indexed (pebble.DB.NewIndexedBatch), otherwise from the database;
// effects of ev itself on the same document are seen in either case. The
// resulting bytes are the effect's document exactly, or encoding/json's
// encoding of the diff applied to the previous version. Nothing is visible
// until the caller commits b.
func (s *Store) Apply(b *pebble.Batch, ev *eventlog.Event) error {
	_, err := s.ApplyResults(b, ev, nil, nil)
	return err
}

// Unpublished returns the stored value of document id as the caller last
// wrote it into a batch that the database may not show yet (a value that
// ApplyResults returned; nil: deleted), or ok false when the database shows
// the document's current version.
type Unpublished func(id string) (value []byte, ok bool)

// ApplyResults is Apply for a caller that already holds the documents the
// effects result in, and that may have written earlier events into batches
// the database does not show yet. docs[i], when not nil, is the exact JSON
// that effect i results in, so a diff effect is not applied again to derive
// it (the previous version is still read, for the snapshot policy). A
// previous version is looked up in unpublished (if not nil) before b and
// the database. ApplyResults returns the stored value of each effect's
// document (nil for a delete), for the caller's Unpublished; the values
// alias b's memory.
//
// Rebuild derives every document from the log, so a rebuild equal to the
// live state also proves that the diffs reproduce these bytes.
func (s *Store) ApplyResults(b *pebble.Batch, ev *eventlog.Event, docs [][]byte, unpublished Unpublished) ([][]byte, error) {
	var p pending
	if len(ev.Effects) > 1 {
		p.cur = make(map[string][]byte, len(ev.Effects))
	}
	a := applier{s: s, unpublished: unpublished, values: make([][]byte, len(ev.Effects))}
	if err := a.apply(b, ev, &p, docs); err != nil {
		return nil, err
	}
	return a.values, nil
}

func (a *applier) apply(b *pebble.Batch, ev *eventlog.Event, p *pending, known [][]byte) error {
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
			if i < len(known) && known[i] != nil {
				doc = known[i]
			} else if doc, err = applyDiff(prevDoc, ef.Diff); err != nil {
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
		if a.held != nil {
			a.hold(id, h, doc)
		} else {
			value, err := a.write(b, p, id, h, doc)
			if err != nil {
				return err
			}
			if a.values != nil {
				a.values[i] = value
			}
		}
		a.key = append(append(a.key[:0], s.history...), id...)
		a.key = binary.BigEndian.AppendUint64(append(a.key, 0), ev.Seq)
		if err := b.Set(a.key, a.hist, nil); err != nil {
			return err
		}
	}
	return nil
}

// hold keeps the new current version of document id in a.held (doc nil:
// deleted).
func (a *applier) hold(id string, h docHeader, doc []byte) {
	old, ok := a.held[id]
	if !ok {
		a.heldBytes += len(id) + heldOverhead
	}
	a.heldBytes -= len(old)
	var v []byte
	if doc != nil {
		v = appendDocValue(old[:0], h, doc) // doc never aliases old
	}
	a.heldBytes += len(v)
	a.held[id] = v
}

// flushHeld writes the documents held in memory into b and forgets them.
func (a *applier) flushHeld(b *pebble.Batch) error {
	for id, v := range a.held {
		a.key = append(append(a.key[:0], a.s.docs...), id...)
		var err error
		if v == nil {
			err = b.Delete(a.key, nil)
		} else {
			err = b.Set(a.key, v, nil)
		}
		if err != nil {
			return err
		}
	}
	clear(a.held)
	a.heldBytes = 0
	return nil
}

// write puts the new current version of document id into b (doc nil:
// deleted) and, for later effects of the same batch, into p. It returns the
// stored value, which aliases b.
func (a *applier) write(b *pebble.Batch, p *pending, id string, h docHeader, doc []byte) ([]byte, error) {
	a.key = append(append(a.key[:0], a.s.docs...), id...)
	var value []byte
	if doc == nil {
		if err := b.Delete(a.key, nil); err != nil {
			return nil, err
		}
	} else {
		var hdr [1 + 3*binary.MaxVarintLen64]byte
		hb := appendDocValue(hdr[:0], h, nil)
		op := b.SetDeferred(len(a.key), len(hb)+len(doc))
		copy(op.Key, a.key)
		copy(op.Value, hb)
		copy(op.Value[len(hb):], doc)
		if err := op.Finish(); err != nil {
			return nil, err
		}
		value = op.Value
	}
	if p.cur != nil {
		p.cur[id] = value
	}
	return value, nil
}

// previous returns the stored value of document id as the batch being built
// sees it.
func (a *applier) previous(b *pebble.Batch, p *pending, id string) ([]byte, bool, error) {
	if v, ok := a.held[id]; ok {
		return v, v != nil, nil
	}
	if v, ok := p.lookup(id); ok {
		return v, v != nil, nil
	}
	if a.unpublished != nil {
		if v, ok := a.unpublished(id); ok {
			return v, v != nil, nil
		}
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
	if out, ok := spliceDiff(doc, diff); ok {
		return out, nil
	}
	var d lazyDoc
	if err := d.init(doc); err != nil {
		return nil, fmt.Errorf("previous version is not JSON: %w", err)
	}
	if err := d.patch(diff); err != nil {
		return nil, err
	}
	return d.marshal()
}

// lazyDoc is a JSON document decoded only as far as the diffs applied to it
// need. jsondiff.Patch.Apply never modifies its input, so it copies every
// object on a changed path, and decoding and re-encoding a whole large
// document for a small diff costs far more than the diff. A diff of a
// document is almost always a change of some of its top-level members (JSON
// form ["o", {name: change, ...}]): lazyDoc keeps the members as raw JSON
// until a diff touches one, adds, removes or replaces members itself, and
// has jsondiff apply each member's change to that member's value. Any other
// diff is applied by jsondiff to the whole decoded document. The encoding
// is the same as encoding/json's of the fully decoded result, since the
// untouched members were themselves encoded by encoding/json.
type lazyDoc struct {
	raw   map[string]json.RawMessage // members not decoded yet
	dec   map[string]any             // members decoded, added or replaced
	whole any                        // the document, if a diff made it something else than members
	isAll bool                       // whole holds the document
}

// lazyMinSize is the document size from which lazyDoc splits a document
// into members; smaller documents are decoded whole, which is cheaper than
// parsing a diff member by member.
const lazyMinSize = 4 << 10

func (d *lazyDoc) init(doc []byte) error {
	d.dec = map[string]any{}
	if len(doc) >= lazyMinSize && doc[0] == '{' {
		return json.Unmarshal(doc, &d.raw)
	}
	d.isAll = true
	return json.Unmarshal(doc, &d.whole)
}

// get returns member name, decoding it if needed.
func (d *lazyDoc) get(name string) (any, bool, error) {
	if v, ok := d.dec[name]; ok {
		return v, true, nil
	}
	r, ok := d.raw[name]
	if !ok {
		return nil, false, nil
	}
	var v any
	if err := json.Unmarshal(r, &v); err != nil {
		return nil, false, err
	}
	delete(d.raw, name)
	d.dec[name] = v
	return v, true, nil
}

// materialize returns the whole decoded document.
func (d *lazyDoc) materialize() (any, error) {
	if d.isAll {
		return d.whole, nil
	}
	for name := range d.raw {
		if _, _, err := d.get(name); err != nil {
			return nil, err
		}
	}
	return d.dec, nil
}

// patch applies the jsondiff patch diff.
func (d *lazyDoc) patch(diff []byte) error {
	var parts []json.RawMessage
	var members map[string]json.RawMessage
	if d.isAll || json.Unmarshal(diff, &parts) != nil || len(parts) != 2 || string(parts[0]) != `"o"` ||
		json.Unmarshal(parts[1], &members) != nil {
		v, err := d.materialize()
		if err != nil {
			return err
		}
		if v, err = applyWhole(v, diff); err != nil {
			return err
		}
		if m, ok := v.(map[string]any); ok {
			*d = lazyDoc{dec: m}
		} else {
			*d = lazyDoc{whole: v, isAll: true}
		}
		return nil
	}
	for name, change := range members {
		var c []json.RawMessage
		if err := json.Unmarshal(change, &c); err != nil || len(c) == 0 {
			return malformedPatch(name, "a change must be a non-empty array")
		}
		cur, present, err := d.get(name)
		if err != nil {
			return err
		}
		switch string(c[0]) {
		case `"+"`, `"-"`:
			if len(c) != 2 {
				return malformedPatch(name, fmt.Sprintf("a %s change has 2 elements, found %d", c[0], len(c)))
			}
			var x any
			if err := json.Unmarshal(c[1], &x); err != nil {
				return malformedPatch(name, err.Error())
			}
			if string(c[0]) == `"+"` {
				if present {
					return patchMismatch(name, "expected no member, found one")
				}
				d.dec[name] = x
				continue
			}
			if !present || !jsondiff.Equal(cur, x) {
				return patchMismatch(name, "the member to remove is absent or differs")
			}
			delete(d.dec, name)
		default:
			if !present {
				return patchMismatch(name, "expected a member, found none")
			}
			var p jsondiff.Patch
			if err := p.UnmarshalJSON(change); err != nil {
				return err
			}
			x, err := p.Apply(cur)
			if err != nil {
				return err
			}
			d.dec[name] = x
		}
	}
	return nil
}

// marshal returns the document's JSON as encoding/json encodes it: members
// in sorted order, the untouched ones copied as they are (encoding/json
// wrote them), the others encoded.
func (d *lazyDoc) marshal() ([]byte, error) {
	if d.isAll {
		return json.Marshal(d.whole)
	}
	if len(d.raw) == 0 {
		return json.Marshal(d.dec)
	}
	keys := make([]string, 0, len(d.raw)+len(d.dec))
	size := 2
	for k, v := range d.raw {
		keys = append(keys, k)
		size += len(k) + len(v) + 4
	}
	for k := range d.dec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]byte, 0, size+len(d.dec)*64)
	out = append(out, '{')
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		name, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		out = append(append(out, name...), ':')
		if r, ok := d.raw[k]; ok {
			out = append(out, r...)
			continue
		}
		v, err := json.Marshal(d.dec[k])
		if err != nil {
			return nil, err
		}
		out = append(out, v...)
	}
	return append(out, '}'), nil
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
