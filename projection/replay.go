package projection

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
	"github.com/vellum-db/vellum/projection/jsondiff"
)

// Reading an old version of a document (AtSeq) replays up to
// SnapshotPolicy.MaxRevisions-1 diffs on the nearest full version. For a
// large document edited by small changes, what costs is not the diffs but
// decoding the document into members and encoding it back; memberReplay
// does neither: it finds the members' spans in the stored JSON with one
// scan, applies every diff to the members it names, and writes the
// untouched members' bytes back as they are.

// member is one top-level member of a document being replayed.
type member struct {
	key     []byte // the name as stored, with its quotes (no escapes)
	raw     []byte // the value as stored, while unchanged
	dec     any    // the decoded value, once a diff touched it
	changed bool
}

// splitMembers returns the members of doc, a compact JSON object written
// by encoding/json (names sorted, no white space), or ok false if doc is
// not one or a name holds an escape (then the general path is taken).
func splitMembers(doc []byte, out []member) ([]member, bool) {
	s := scanner{b: doc}
	if !s.byte('{') {
		return nil, false
	}
	if s.byte('}') {
		return out, s.i == len(doc)
	}
	for {
		start := s.i
		if _, ok := s.key(); !ok {
			return nil, false
		}
		key := doc[start:s.i]
		if !s.byte(':') {
			return nil, false
		}
		v, ok := s.value()
		if !ok {
			return nil, false
		}
		if n := len(out); n > 0 && bytes.Compare(out[n-1].key, key) >= 0 {
			return nil, false // not sorted: not written by encoding/json
		}
		out = append(out, member{key: key, raw: v})
		if s.byte('}') {
			return out, s.i == len(doc)
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

// findMember returns the index of the member named name (unquoted), or
// where it would be inserted.
func findMember(ms []member, name []byte) (int, bool) {
	return slices.BinarySearchFunc(ms, name, func(m member, name []byte) int {
		return bytes.Compare(m.key[1:len(m.key)-1], name)
	})
}

// applyScalarChanges applies changes (parseMemberChanges: scalar values
// written as encoding/json writes them, names sorted and free of escapes)
// to raw members, without decoding anything. It returns false, having
// changed nothing, if a change does not fit a raw member byte for byte
// (the caller then decodes).
func applyScalarChanges(ms *[]member, changes []memberChange) bool {
	for _, c := range changes {
		i, present := findMember(*ms, c.key)
		switch c.kind {
		case '+':
			if present {
				return false
			}
		default: // 's' and '-'
			if !present || (*ms)[i].changed || !bytes.Equal((*ms)[i].raw, c.old) {
				return false
			}
		}
	}
	for _, c := range changes {
		i, _ := findMember(*ms, c.key)
		switch c.kind {
		case '+':
			key := make([]byte, 0, len(c.key)+2)
			key = append(append(append(key, '"'), c.key...), '"')
			*ms = slices.Insert(*ms, i, member{key: key, raw: c.new})
		case '-':
			*ms = slices.Delete(*ms, i, i+1)
		default:
			(*ms)[i].raw = c.new
		}
	}
	return true
}

// memberReplay applies diffs (oldest first) to base. ok is false, with
// nothing done, when base or a diff is not of the member-wise kind or does
// not fit; the caller then takes the general path (lazyDoc), which also
// reports any error. The result is byte for byte what the general path
// produces: untouched members as stored, touched ones encoded by
// encoding/json, names sorted.
func memberReplay(base []byte, diffs [][]byte) ([]byte, bool) {
	ms, ok := splitMembers(base, make([]member, 0, max(16, len(base)/48)))
	if !ok {
		return nil, false
	}
	var buf [8]memberChange
	for _, diff := range diffs {
		if cs, ok := parseMemberChanges(diff, buf[:0]); ok && applyScalarChanges(&ms, cs) {
			continue
		}
		var parts []json.RawMessage
		var changes map[string]json.RawMessage
		if json.Unmarshal(diff, &parts) != nil || len(parts) != 2 || string(parts[0]) != `"o"` ||
			json.Unmarshal(parts[1], &changes) != nil {
			return nil, false
		}
		for name, change := range changes {
			var c []json.RawMessage
			if json.Unmarshal(change, &c) != nil || len(c) == 0 {
				return nil, false
			}
			i, present := findMember(ms, []byte(name))
			var cur any
			if present {
				if ms[i].changed {
					cur = ms[i].dec
				} else if json.Unmarshal(ms[i].raw, &cur) != nil {
					return nil, false
				}
			}
			switch string(c[0]) {
			case `"+"`, `"-"`:
				var x any
				if len(c) != 2 || json.Unmarshal(c[1], &x) != nil {
					return nil, false
				}
				if string(c[0]) == `"+"` {
					if present {
						return nil, false
					}
					key, err := json.Marshal(name)
					if err != nil || bytes.IndexByte(key, '\\') >= 0 {
						return nil, false // an escaped name would not sort by its bytes
					}
					ms = slices.Insert(ms, i, member{key: key, dec: x, changed: true})
					continue
				}
				if !present || !jsondiff.Equal(cur, x) {
					return nil, false
				}
				ms = slices.Delete(ms, i, i+1)
			default:
				if !present {
					return nil, false
				}
				var p jsondiff.Patch
				if p.UnmarshalJSON(change) != nil {
					return nil, false
				}
				x, err := p.Apply(cur)
				if err != nil {
					return nil, false
				}
				ms[i].dec, ms[i].changed, ms[i].raw = x, true, nil
			}
		}
	}
	out := make([]byte, 0, len(base)+len(base)/8)
	out = append(out, '{')
	for i, m := range ms {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(append(out, m.key...), ':')
		if !m.changed {
			out = append(out, m.raw...)
			continue
		}
		v, err := json.Marshal(m.dec)
		if err != nil {
			return nil, false
		}
		out = append(out, v...)
	}
	return append(out, '}'), true
}

// diffsOf returns the diffs of the history entries patches (newest first)
// of document id, oldest first, read with one iterator over the log.
func (s *Store) diffsOf(id string, patches []historyEntry) ([][]byte, error) {
	it, err := s.pdb.NewIter(&pebble.IterOptions{
		LowerBound: eventlog.EventKey(s.dataset, patches[len(patches)-1].seq),
		UpperBound: eventlog.EventKey(s.dataset, patches[0].seq+1),
	})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	diffs := make([][]byte, 0, len(patches))
	for _, e := range slices.Backward(patches) {
		if !it.SeekGE(eventlog.EventKey(s.dataset, e.seq)) {
			if err := it.Error(); err != nil {
				return nil, err
			}
			return nil, s.corrupt(id, e.seq, "history points to event %d, which the log does not hold", e.seq)
		}
		k := it.Key()
		if len(k) != 13 || !bytes.Equal(k, eventlog.EventKey(s.dataset, e.seq)) {
			return nil, s.corrupt(id, e.seq, "history points to event %d, which the log does not hold", e.seq)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		ev, err := eventlog.DecodeEvent(v)
		if err != nil {
			return nil, err
		}
		if e.effect >= len(ev.Effects) || ev.Effects[e.effect].DocID != id {
			return nil, s.corrupt(id, e.seq, "history points to effect %d, which is not about this document", e.effect)
		}
		d := ev.Effects[e.effect].Diff
		if d == nil {
			return nil, s.corrupt(id, e.seq, "history says effect %d holds a diff, but it does not", e.effect)
		}
		diffs = append(diffs, bytes.Clone(d))
	}
	return diffs, nil
}
