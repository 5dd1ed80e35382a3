package mutation

import (
	"fmt"
	"math"
	"slices"
)

var sprintf = fmt.Sprintf

// opError is a failure inside a patch operation; apply turns it into an
// *Error carrying the mutation index and document id.
type opError struct {
	code string
	msg  string
}

func (e *opError) Error() string { return e.msg }

func typeMismatch(path Path, format string, args ...any) *opError {
	return &opError{CodeTypeMismatch, sprintf("at %q: "+format, append([]any{path.text}, args...)...)}
}

func invalidPatch(path Path, format string, args ...any) *opError {
	return &opError{CodeInvalidPatch, sprintf("at %q: "+format, append([]any{path.text}, args...)...)}
}

// leafFunc computes the new value of a selected location. present says
// whether the location holds a value; it returns the new value and whether
// the location keeps one (false removes it).
type leafFunc func(cur any, present bool) (any, bool, *opError)

// walk applies leaf at every location segs selects inside v, which the
// caller owns (it is modified in place). It returns the new value of v (an
// array may be reallocated). With create, missing members on the way are
// created as empty objects (set and setIfMissing); otherwise a missing
// member selects nothing. strict says whether passing through a value of the
// wrong type is a typeMismatch (true) or selects nothing (unset).
// walkMode says how walk treats what it does not find.
type walkMode struct {
	create  bool   // create missing members on the way as empty objects
	strict  bool   // passing through a value of the wrong type is a typeMismatch
	present bool   // a missing member on the way is an error (inc, dec, diffMatchPatch)
	op      string // the operation, for messages
}

func walk(path Path, v any, segs []segment, leaf leafFunc, m walkMode) (any, *opError) {
	seg := segs[0]
	last := len(segs) == 1
	switch c := v.(type) {
	case map[string]any:
		switch seg.kind {
		case segAttr:
			cur, ok := c[seg.name]
			if last {
				nv, keep, err := leaf(cur, ok)
				if err != nil {
					return nil, err
				}
				if keep {
					c[seg.name] = nv
				} else {
					delete(c, seg.name)
				}
				return c, nil
			}
			if !ok {
				switch {
				case m.create:
					cur = map[string]any{}
				case m.present:
					return nil, notPresent(path, m.op)
				default:
					return c, nil
				}
			}
			nv, err := walk(path, cur, segs[1:], leaf, m)
			if err != nil {
				return nil, err
			}
			c[seg.name] = nv
			return c, nil
		case segAll:
			keys := make([]string, 0, len(c))
			for k := range c {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if last {
					nv, keep, err := leaf(c[k], true)
					if err != nil {
						return nil, err
					}
					if keep {
						c[k] = nv
					} else {
						delete(c, k)
					}
					continue
				}
				nv, err := walk(path, c[k], segs[1:], leaf, m)
				if err != nil {
					return nil, err
				}
				c[k] = nv
			}
			return c, nil
		}
		if !m.strict {
			return c, nil
		}
		return nil, typeMismatch(path, "an array element selector is applied to an object")
	case []any:
		if seg.kind == segAttr {
			if !m.strict {
				return c, nil
			}
			return nil, typeMismatch(path, "member %q is selected in an array", seg.name)
		}
		idx := selectIndexes(c, seg)
		if last {
			var drop []int
			for _, i := range idx {
				nv, keep, err := leaf(c[i], true)
				if err != nil {
					return nil, err
				}
				if keep {
					c[i] = nv
				} else {
					drop = append(drop, i)
				}
			}
			return removeIndexes(c, drop), nil
		}
		for _, i := range idx {
			nv, err := walk(path, c[i], segs[1:], leaf, m)
			if err != nil {
				return nil, err
			}
			c[i] = nv
		}
		return c, nil
	}
	if !m.strict {
		return v, nil
	}
	return nil, typeMismatch(path, "the path goes through %s, which has no members or elements", kindName(v))
}

// notPresent reports a missing value where an operation needs one; Sanity
// answers inc on a missing field with "Cannot increment because it is not
// present".
func notPresent(path Path, op string) *opError {
	return invalidPatch(path, "cannot %s: the value is not present", op)
}

// selectIndexes returns the indexes of the existing elements of xs that an
// element selector picks, ascending.
func selectIndexes(xs []any, seg segment) []int {
	n := len(xs)
	switch seg.kind {
	case segIndex:
		i := seg.index
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			return nil
		}
		return []int{i}
	case segKey:
		var out []int
		for i, x := range xs {
			if m, ok := x.(map[string]any); ok {
				if k, ok := m["_key"].(string); ok && k == seg.name {
					out = append(out, i)
				}
			}
		}
		return out
	case segAll:
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	case segSlice:
		from, to := sliceBounds(n, seg)
		var out []int
		for i := from; i < to; i++ {
			out = append(out, i)
		}
		return out
	}
	return nil
}

// sliceBounds resolves a range against an array of n elements.
func sliceBounds(n int, seg segment) (from, to int) {
	from, to = 0, n
	if seg.hasFrom {
		from = clampIndex(seg.from, n)
	}
	if seg.hasTo {
		to = clampIndex(seg.to, n)
	}
	if to < from {
		to = from
	}
	return from, to
}

func clampIndex(i, n int) int {
	if i < 0 {
		i += n
	}
	return max(0, min(i, n))
}

func removeIndexes(xs []any, drop []int) []any {
	if len(drop) == 0 {
		return xs
	}
	out := make([]any, 0, len(xs)-len(drop))
	d := 0
	for i, x := range xs {
		if d < len(drop) && drop[d] == i {
			d++
			continue
		}
		out = append(out, x)
	}
	return out
}

// ---- the operations ----

func opSet(doc map[string]any, op Op) *opError {
	_, err := walk(op.Path, doc, op.Path.segs, func(any, bool) (any, bool, *opError) {
		return deepCopy(op.Value), true, nil
	}, walkMode{create: true, strict: true})
	return err
}

func opSetIfMissing(doc map[string]any, op Op) *opError {
	_, err := walk(op.Path, doc, op.Path.segs, func(cur any, present bool) (any, bool, *opError) {
		if present {
			return cur, true, nil
		}
		return deepCopy(op.Value), true, nil
	}, walkMode{create: true, strict: true})
	return err
}

func opUnset(doc map[string]any, path Path) *opError {
	_, err := walk(path, doc, path.segs, func(any, bool) (any, bool, *opError) {
		return nil, false, nil
	}, walkMode{})
	return err
}

func opInc(doc map[string]any, op Op, sign float64) *opError {
	delta := sign * op.Value.(float64)
	name := "increment"
	if sign < 0 {
		name = "decrement"
	}
	_, err := walk(op.Path, doc, op.Path.segs, func(cur any, present bool) (any, bool, *opError) {
		if !present {
			return nil, false, notPresent(op.Path, name)
		}
		n, ok := cur.(float64)
		if !ok {
			return nil, false, typeMismatch(op.Path, "cannot add to %s, only to a number", kindName(cur))
		}
		r := n + delta
		if math.IsInf(r, 0) || math.IsNaN(r) {
			return nil, false, invalidPatch(op.Path, "the result is not a finite number")
		}
		return r, true, nil
	}, walkMode{strict: true, present: true, op: name})
	return err
}

func opDiffMatchPatch(doc map[string]any, op Op) *opError {
	patches, perr := parseDMP(op.Value.(string))
	if perr != nil {
		return invalidPatch(op.Path, "%s", perr.Error())
	}
	_, err := walk(op.Path, doc, op.Path.segs, func(cur any, present bool) (any, bool, *opError) {
		if !present {
			return nil, false, notPresent(op.Path, "apply diffMatchPatch")
		}
		s, ok := cur.(string)
		if !ok {
			return nil, false, typeMismatch(op.Path, "diffMatchPatch applies to a string, found %s", kindName(cur))
		}
		out, err := applyDMP(patches, s)
		if err != nil {
			return nil, false, invalidPatch(op.Path, "%s", err.Error())
		}
		return out, true, nil
	}, walkMode{strict: true, present: true, op: "apply diffMatchPatch"})
	return err
}

func opInsert(doc map[string]any, ins *Insert) *opError {
	path := ins.Path
	segs := path.segs
	lastSeg := segs[len(segs)-1]
	if lastSeg.kind == segAttr {
		return invalidPatch(path, "insert needs a path to array elements (ending in [index], [_key==\"...\"], [from:to] or [*])")
	}
	// The array is the value at the path without its last segment.
	apply := func(cur any, present bool) (any, bool, *opError) {
		if !present {
			return nil, false, invalidPatch(path, "there is no array to insert into")
		}
		xs, ok := cur.([]any)
		if !ok {
			return nil, false, typeMismatch(path, "cannot insert into %s, only into an array", kindName(cur))
		}
		out, err := insertItems(path, xs, lastSeg, ins)
		return out, true, err
	}
	if len(segs) == 1 {
		// An element selector on the document itself.
		return typeMismatch(path, "cannot insert into the document, only into an array")
	}
	parent := Path{text: path.text, segs: segs[:len(segs)-1]}
	found := false
	_, err := walk(path, doc, parent.segs, func(cur any, present bool) (any, bool, *opError) {
		found = true
		return apply(cur, present)
	}, walkMode{strict: true})
	if err != nil {
		return err
	}
	if !found {
		return invalidPatch(path, "there is no array to insert into")
	}
	return nil
}

func insertItems(path Path, xs []any, seg segment, ins *Insert) ([]any, *opError) {
	n := len(xs)
	var at, del int // insert position and how many elements to replace
	switch seg.kind {
	case segIndex:
		i := seg.index
		if i < 0 {
			i += n
		}
		switch ins.Position {
		case InsertBefore:
			at = max(0, min(i, n))
		case InsertAfter:
			at = max(0, min(i+1, n))
		default:
			if i < 0 || i >= n {
				return nil, invalidPatch(path, "there is no element %d to replace in an array of %d", seg.index, n)
			}
			at, del = i, 1
		}
	case segKey:
		idx := selectIndexes(xs, seg)
		if len(idx) == 0 {
			return nil, invalidPatch(path, "there is no element with _key %q", seg.name)
		}
		first, last := idx[0], idx[len(idx)-1]
		switch ins.Position {
		case InsertBefore:
			at = first
		case InsertAfter:
			at = last + 1
		default:
			if last-first+1 != len(idx) {
				return nil, invalidPatch(path, "the elements with _key %q are not contiguous", seg.name)
			}
			at, del = first, len(idx)
		}
	case segAll, segSlice:
		from, to := 0, n
		if seg.kind == segSlice {
			from, to = sliceBounds(n, seg)
		}
		switch ins.Position {
		case InsertBefore:
			at = from
		case InsertAfter:
			at = to
		default:
			at, del = from, to-from
		}
	}
	out := make([]any, 0, n-del+len(ins.Items))
	out = append(out, xs[:at]...)
	for _, item := range ins.Items {
		out = append(out, deepCopy(item))
	}
	out = append(out, xs[at+del:]...)
	return out, nil
}

// deepCopy copies a JSON value so that the copy can be modified in place.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}
