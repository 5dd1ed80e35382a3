package jsondiff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// The JSON form of a patch is its root change, or null for the empty patch.
// A change is an array whose first element names its kind:
//
//	["s", old, new]                 the value old is replaced by new
//	["+", new]                      the object member is added (was absent)
//	["-", old]                      the object member is removed
//	["t", at, "old", "new"]         in a string, the text old at byte offset at
//	                                (of its UTF-8 form) is replaced by new
//	["o", {"name": change, ...}]    changes to object members, by name
//	["a", hunk, ...]                changes to an array, by ascending index:
//	  [i, change]                   the element at index i changes
//	  [i, [old...], [new...]]       the elements old at index i are replaced
//	                                by the elements new (a splice)
//
// Indexes and offsets refer to the value the patch applies to. Members and
// hunks appear in a fixed order, so equal patches have equal JSON.

// MarshalJSON encodes p in the compact form described above.
func (p Patch) MarshalJSON() ([]byte, error) {
	if p.root == nil {
		return []byte("null"), nil
	}
	var buf bytes.Buffer
	if err := encode(&buf, p.root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func encodeValue(buf *bytes.Buffer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf.Write(b)
	return nil
}

func encodeValues(buf *bytes.Buffer, vs []any) error {
	buf.WriteByte('[')
	for i, v := range vs {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := encodeValue(buf, v); err != nil {
			return err
		}
	}
	buf.WriteByte(']')
	return nil
}

func encode(buf *bytes.Buffer, n *node) error {
	buf.WriteString(`["`)
	buf.WriteByte(n.kind)
	buf.WriteByte('"')
	switch n.kind {
	case kindSet:
		buf.WriteByte(',')
		if err := encodeValue(buf, n.old); err != nil {
			return err
		}
		buf.WriteByte(',')
		if err := encodeValue(buf, n.new); err != nil {
			return err
		}
	case kindAdd:
		buf.WriteByte(',')
		if err := encodeValue(buf, n.new); err != nil {
			return err
		}
	case kindRemove:
		buf.WriteByte(',')
		if err := encodeValue(buf, n.old); err != nil {
			return err
		}
	case kindText:
		fmt.Fprintf(buf, ",%d,", n.at)
		if err := encodeValue(buf, n.oldS); err != nil {
			return err
		}
		buf.WriteByte(',')
		if err := encodeValue(buf, n.newS); err != nil {
			return err
		}
	case kindObject:
		buf.WriteString(",{")
		for i, k := range n.keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encodeValue(buf, k); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := encode(buf, n.kids[i]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case kindArray:
		for _, h := range n.hunks {
			fmt.Fprintf(buf, ",[%d,", h.at)
			if h.kid != nil {
				if err := encode(buf, h.kid); err != nil {
					return err
				}
			} else {
				if err := encodeValues(buf, h.del); err != nil {
					return err
				}
				buf.WriteByte(',')
				if err := encodeValues(buf, h.ins); err != nil {
					return err
				}
			}
			buf.WriteByte(']')
		}
	}
	buf.WriteByte(']')
	return nil
}

// UnmarshalJSON decodes a patch from the form MarshalJSON produces. Input
// that is not such a patch is an *Error with code malformedPatch.
func (p *Patch) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return &Error{Code: CodeMalformedPatch, Description: err.Error()}
	}
	if v == nil {
		p.root = nil
		return nil
	}
	n, err := decode(v, false)
	if err != nil {
		return err
	}
	p.root = n
	return nil
}

func malformed(format string, args ...any) *Error {
	return &Error{Code: CodeMalformedPatch, Description: fmt.Sprintf(format, args...)}
}

// decode turns the JSON form of a change into a node. member says whether
// the change is that of an object member (where "+" and "-" may appear).
func decode(v any, member bool) (*node, error) {
	xs, ok := v.([]any)
	if !ok || len(xs) == 0 {
		return nil, malformed("a change must be a non-empty array, found %s", describe(v))
	}
	tag, ok := xs[0].(string)
	if !ok || len(tag) != 1 {
		return nil, malformed("a change must start with its kind, found %s", describe(xs[0]))
	}
	arity := func(n int) error {
		if len(xs) != n {
			return malformed("a %q change has %d elements, found %d", tag, n, len(xs))
		}
		return nil
	}
	switch kind := tag[0]; kind {
	case kindSet:
		if err := arity(3); err != nil {
			return nil, err
		}
		return &node{kind: kind, old: xs[1], new: xs[2]}, nil
	case kindAdd, kindRemove:
		if !member {
			return nil, malformed("a %q change may only stand for an object member", tag)
		}
		if err := arity(2); err != nil {
			return nil, err
		}
		if kind == kindAdd {
			return &node{kind: kind, new: xs[1]}, nil
		}
		return &node{kind: kind, old: xs[1]}, nil
	case kindText:
		if err := arity(4); err != nil {
			return nil, err
		}
		at, err := index(xs[1])
		if err != nil {
			return nil, err
		}
		o, ok1 := xs[2].(string)
		n, ok2 := xs[3].(string)
		if !ok1 || !ok2 {
			return nil, malformed(`a "t" change needs two strings`)
		}
		return &node{kind: kind, at: at, oldS: o, newS: n}, nil
	case kindObject:
		if err := arity(2); err != nil {
			return nil, err
		}
		m, ok := xs[1].(map[string]any)
		if !ok {
			return nil, malformed(`an "o" change needs an object, found %s`, describe(xs[1]))
		}
		n := &node{kind: kind}
		for k := range m {
			n.keys = append(n.keys, k)
		}
		slices.Sort(n.keys)
		for _, k := range n.keys {
			kid, err := decode(m[k], true)
			if err != nil {
				return nil, within(err, k)
			}
			n.kids = append(n.kids, kid)
		}
		return n, nil
	case kindArray:
		n := &node{kind: kind}
		end := 0
		for i, x := range xs[1:] {
			h, ok := x.([]any)
			if !ok || (len(h) != 2 && len(h) != 3) {
				return nil, malformed("hunk %d of an \"a\" change must be [index, change] or [index, [old...], [new...]]", i)
			}
			at, err := index(h[0])
			if err != nil {
				return nil, err
			}
			if at < end {
				return nil, malformed("hunk %d of an \"a\" change is at index %d, before the end of the previous one (%d)", i, at, end)
			}
			if len(h) == 2 {
				kid, err := decode(h[1], false)
				if err != nil {
					return nil, within(err, fmt.Sprint(at))
				}
				n.hunks = append(n.hunks, hunk{at: at, kid: kid})
				end = at + 1
				continue
			}
			del, ok1 := h[1].([]any)
			ins, ok2 := h[2].([]any)
			if !ok1 || !ok2 {
				return nil, malformed("hunk %d of an \"a\" change needs two arrays of elements", i)
			}
			n.hunks = append(n.hunks, hunk{at: at, del: del, ins: ins})
			end = at + len(del)
		}
		return n, nil
	}
	return nil, malformed("unknown change kind %q", tag)
}

func index(v any) (int, error) {
	f, ok := v.(float64)
	if !ok || f < 0 || f != math.Trunc(f) || f > math.MaxInt32 {
		return 0, malformed("expected an index (a non-negative integer), found %s", describe(v))
	}
	return int(f), nil
}
