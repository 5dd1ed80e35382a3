package jsondiff

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// A Patch is the structural difference between two JSON values, as computed
// by Diff. It holds both sides of every change, so it can be applied forwards
// (Apply) and backwards (Revert). The zero Patch is the empty patch: it
// changes nothing.
//
// Values are the ones encoding/json decodes into any: nil, bool, float64,
// string, []any and map[string]any.
type Patch struct {
	root *node
}

// node kinds.
const (
	kindSet    = 's' // replace the value: old → new
	kindAdd    = '+' // add an object member that was absent: new
	kindRemove = '-' // remove an object member: old
	kindObject = 'o' // per-member changes of an object
	kindArray  = 'a' // hunks over an array
	kindText   = 't' // splice inside a string
)

type node struct {
	kind byte

	old, new any // kindSet, kindAdd (new), kindRemove (old)

	keys []string // kindObject: sorted member names
	kids []*node  // kindObject: the change of each member

	hunks []hunk // kindArray, ordered by position

	at         int    // kindText: byte offset of the change
	oldS, newS string // kindText: the replaced and the inserted text
}

// A hunk changes an array at position at (an index into the array the patch
// applies to). It either edits the element there (kid != nil) or replaces the
// elements del by ins (a splice).
type hunk struct {
	at       int
	kid      *node
	del, ins []any
}

// IsEmpty reports whether p changes nothing.
func (p Patch) IsEmpty() bool { return p.root == nil }

// Diff returns the patch that turns a into b. It is deterministic: equal
// inputs give equal patches (and equal JSON). It does not modify a or b, and
// the patch may share unchanged subvalues with them, so neither should be
// modified while the patch is in use.
func Diff(a, b any) Patch {
	return Patch{root: diff(a, b)}
}

// Apply returns the value that p turns a into. If a is not the value p was
// computed from (a member, element or text p changes does not hold what p
// expects), it returns an *Error and no value. Apply never modifies a; the
// result shares the subvalues p leaves unchanged with a, and the values it
// inserts with p, so treat it as read-only (or copy it) while they live.
func (p Patch) Apply(a any) (any, error) {
	if p.root == nil {
		return a, nil
	}
	v, err := apply(p.root, a)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Revert returns the value that p was computed from, given the value b that
// p produces. It is Apply of the inverse patch.
func (p Patch) Revert(b any) (any, error) {
	return p.Invert().Apply(b)
}

// Invert returns the patch that undoes p.
func (p Patch) Invert() Patch {
	if p.root == nil {
		return p
	}
	return Patch{root: invert(p.root)}
}

// Error reports a patch that does not fit the value it is applied to, or
// patch JSON that cannot be decoded.
type Error struct {
	Code        string // "patchMismatch" or "malformedPatch"
	Path        string // where in the value (JSON Pointer, "" is the root)
	Description string
}

// Error codes.
const (
	CodePatchMismatch  = "patchMismatch"
	CodeMalformedPatch = "malformedPatch"
)

func (e *Error) Error() string {
	where := e.Path
	if where == "" {
		where = "the root"
	}
	return fmt.Sprintf("jsondiff: %s at %s: %s", e.Code, where, e.Description)
}

// ErrorCode returns the stable code of the error.
func (e *Error) ErrorCode() string { return e.Code }

func mismatch(format string, args ...any) *Error {
	return &Error{Code: CodePatchMismatch, Description: fmt.Sprintf(format, args...)}
}

// within prefixes the path of err (if it is an *Error) with one step.
func within(err error, step string) error {
	if e, ok := err.(*Error); ok {
		step = strings.ReplaceAll(strings.ReplaceAll(step, "~", "~0"), "/", "~1")
		e.Path = "/" + step + e.Path
	}
	return err
}

// ---- diff ----

// minTextDiff is the length from which a changed string is stored as a
// splice rather than as both whole strings.
const minTextDiff = 64

func diff(a, b any) *node {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			return diffObject(av, bv)
		}
	case []any:
		if bv, ok := b.([]any); ok {
			return diffArray(av, bv)
		}
	case string:
		if bv, ok := b.(string); ok {
			if av == bv {
				return nil
			}
			if len(av) >= minTextDiff && len(bv) >= minTextDiff {
				return diffText(av, bv)
			}
			return &node{kind: kindSet, old: a, new: b}
		}
	}
	if Equal(a, b) {
		return nil
	}
	return &node{kind: kindSet, old: a, new: b}
}

func diffObject(a, b map[string]any) *node {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	n := &node{kind: kindObject}
	for _, k := range keys {
		av, inA := a[k]
		bv, inB := b[k]
		var kid *node
		switch {
		case !inA:
			kid = &node{kind: kindAdd, new: bv}
		case !inB:
			kid = &node{kind: kindRemove, old: av}
		default:
			kid = diff(av, bv)
		}
		if kid != nil {
			n.keys = append(n.keys, k)
			n.kids = append(n.kids, kid)
		}
	}
	if len(n.keys) == 0 {
		return nil
	}
	return n
}

func diffText(a, b string) *node {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	// Do not split a UTF-8 sequence: back up to a rune start.
	for p > 0 && p < len(a) && !runeStart(a[p]) {
		p--
	}
	for p > 0 && p < len(b) && !runeStart(b[p]) {
		p--
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	for s > 0 && !runeStart(a[len(a)-s]) {
		s--
	}
	for s > 0 && !runeStart(b[len(b)-s]) {
		s--
	}
	oldS, newS := a[p:len(a)-s], b[p:len(b)-s]
	if len(oldS)+len(newS)+8 >= len(a)+len(b) {
		return &node{kind: kindSet, old: a, new: b}
	}
	return &node{kind: kindText, at: p, oldS: oldS, newS: newS}
}

func runeStart(c byte) bool { return c&0xC0 != 0x80 }

// diffArray aligns the elements of a and b, then records the aligned pairs
// that differ as edits and the unaligned runs as splices. Arrays whose
// elements all carry distinct string _key members are aligned by key (the
// longest run of keys in common order); others by their common prefix and
// suffix, pairing the middles element by element when they have equal
// length.
func diffArray(a, b []any) *node {
	pairs := alignByKey(a, b)
	if pairs == nil {
		pairs = alignByPosition(a, b)
	}
	n := &node{kind: kindArray}
	i, j := 0, 0
	for _, pr := range append(pairs, [2]int{len(a), len(b)}) {
		if pr[0] > i || pr[1] > j {
			n.hunks = append(n.hunks, hunk{at: i, del: a[i:pr[0]:pr[0]], ins: b[j:pr[1]:pr[1]]})
		}
		if pr[0] == len(a) {
			break
		}
		if kid := diff(a[pr[0]], b[pr[1]]); kid != nil {
			n.hunks = append(n.hunks, hunk{at: pr[0], kid: kid})
		}
		i, j = pr[0]+1, pr[1]+1
	}
	if len(n.hunks) == 0 {
		return nil
	}
	return n
}

func alignByPosition(a, b []any) [][2]int {
	p := 0
	for p < len(a) && p < len(b) && Equal(a[p], b[p]) {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && Equal(a[len(a)-1-s], b[len(b)-1-s]) {
		s++
	}
	var pairs [][2]int
	for k := 0; k < p; k++ {
		pairs = append(pairs, [2]int{k, k})
	}
	ma, mb := a[p:len(a)-s], b[p:len(b)-s]
	switch {
	case len(ma) == len(mb):
		for k := range ma {
			pairs = append(pairs, [2]int{p + k, p + k})
		}
	case len(ma) > 0 && len(mb) > 0 && len(ma)*len(mb) <= maxLCSCells:
		for _, pr := range alignMiddle(ma, mb) {
			pairs = append(pairs, [2]int{p + pr[0], p + pr[1]})
		}
	}
	for k := s; k > 0; k-- {
		pairs = append(pairs, [2]int{len(a) - k, len(b) - k})
	}
	return pairs
}

// maxLCSCells bounds the table of the longest common subsequence that
// aligns the changed middles of unkeyed arrays; larger middles are spliced
// whole.
const maxLCSCells = 1 << 18

// alignMiddle aligns two arrays whose first and last elements differ and
// whose lengths differ: the longest common subsequence of equal elements,
// and between its anchors, runs of equal length paired element by element
// (so that an edited element costs its own change, not a splice).
func alignMiddle(a, b []any) [][2]int {
	ha := make([]uint64, len(a))
	hb := make([]uint64, len(b))
	for i, x := range a {
		ha[i] = hash(x)
	}
	for j, y := range b {
		hb[j] = hash(y)
	}
	eq := func(i, j int) bool { return ha[i] == hb[j] && Equal(a[i], b[j]) }
	// lcs[i][j]: length of the LCS of a[i:] and b[j:].
	w := len(b) + 1
	lcs := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			switch {
			case eq(i, j):
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			default:
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	var anchors [][2]int
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case eq(i, j):
			anchors = append(anchors, [2]int{i, j})
			i, j = i+1, j+1
		case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
			i++
		default:
			j++
		}
	}
	var pairs [][2]int
	i, j := 0, 0
	for _, an := range append(anchors, [2]int{len(a), len(b)}) {
		if an[0]-i == an[1]-j {
			for k := 0; k < an[0]-i; k++ {
				pairs = append(pairs, [2]int{i + k, j + k})
			}
		}
		if an[0] < len(a) {
			pairs = append(pairs, an)
		}
		i, j = an[0]+1, an[1]+1
	}
	return pairs
}

// hash fingerprints a JSON value; equal values have equal fingerprints.
func hash(v any) uint64 {
	const prime = 1099511628211
	mix := func(h, x uint64) uint64 { return (h ^ x) * prime }
	switch x := v.(type) {
	case nil:
		return 1
	case bool:
		if x {
			return 2
		}
		return 3
	case float64:
		return mix(4, math.Float64bits(x))
	case string:
		h := uint64(14695981039346656037)
		for i := 0; i < len(x); i++ {
			h = mix(h, uint64(x[i]))
		}
		return mix(h, 5)
	case []any:
		h := uint64(6)
		for _, e := range x {
			h = mix(h, hash(e))
		}
		return h
	case map[string]any:
		var sum uint64 // order-independent
		for k, e := range x {
			sum += mix(hash(k), hash(e))
		}
		return mix(7, sum)
	}
	return 8
}

// keysOf returns the _key of every element, or nil if some element is not
// an object with a string _key or a key repeats.
func keysOf(xs []any) []string {
	keys := make([]string, len(xs))
	seen := make(map[string]struct{}, len(xs))
	for i, x := range xs {
		m, ok := x.(map[string]any)
		if !ok {
			return nil
		}
		k, ok := m["_key"].(string)
		if !ok {
			return nil
		}
		if _, dup := seen[k]; dup {
			return nil
		}
		seen[k] = struct{}{}
		keys[i] = k
	}
	return keys
}

// alignByKey pairs elements of a and b with the same _key, keeping the
// longest subsequence of b's keys that appear in the same order in a.
// It returns nil when the arrays are not keyed.
func alignByKey(a, b []any) [][2]int {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	ka, kb := keysOf(a), keysOf(b)
	if ka == nil || kb == nil {
		return nil
	}
	pos := make(map[string]int, len(ka))
	for i, k := range ka {
		pos[k] = i
	}
	// seq: (index in a, index in b) for b's keys found in a, in b order.
	var seq [][2]int
	for j, k := range kb {
		if i, ok := pos[k]; ok {
			seq = append(seq, [2]int{i, j})
		}
	}
	if len(seq) == 0 {
		return [][2]int{}
	}
	// Longest strictly increasing subsequence of seq[*][0] (patience).
	tails := []int{}              // tails[l] = index in seq ending an LIS of length l+1
	prev := make([]int, len(seq)) // predecessor in seq
	for x := range seq {
		v := seq[x][0]
		l, _ := slices.BinarySearchFunc(tails, v, func(t, v int) int { return seq[t][0] - v })
		if l > 0 {
			prev[x] = tails[l-1]
		} else {
			prev[x] = -1
		}
		if l == len(tails) {
			tails = append(tails, x)
		} else {
			tails[l] = x
		}
	}
	out := make([][2]int, len(tails))
	for x, l := tails[len(tails)-1], len(tails)-1; l >= 0; x, l = prev[x], l-1 {
		out[l] = seq[x]
	}
	return out
}

// Equal reports whether two JSON values are equal. Numbers are equal when
// they have the same bits, so that 0 and -0 (which encode differently) are
// not.
func Equal(a, b any) bool {
	switch av := a.(type) {
	case nil:
		return b == nil
	case bool:
		bv, ok := b.(bool)
		return ok && av == bv
	case float64:
		bv, ok := b.(float64)
		return ok && math.Float64bits(av) == math.Float64bits(bv)
	case string:
		bv, ok := b.(string)
		return ok && av == bv
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !Equal(av[i], bv[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for k, x := range av {
			y, ok := bv[k]
			if !ok || !Equal(x, y) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(a, b)
	}
}

// ---- apply ----

func apply(n *node, v any) (any, error) {
	switch n.kind {
	case kindSet:
		if !Equal(v, n.old) {
			return nil, mismatch("expected %s, found %s", describe(n.old), describe(v))
		}
		return n.new, nil
	case kindText:
		s, ok := v.(string)
		if !ok {
			return nil, mismatch("expected a string, found %s", describe(v))
		}
		end := n.at + len(n.oldS)
		if end > len(s) || s[n.at:end] != n.oldS {
			return nil, mismatch("expected %q at byte %d of the string", n.oldS, n.at)
		}
		return s[:n.at] + n.newS + s[end:], nil
	case kindObject:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, mismatch("expected an object, found %s", describe(v))
		}
		out := make(map[string]any, len(m)+len(n.keys))
		for k, x := range m {
			out[k] = x
		}
		for i, k := range n.keys {
			kid := n.kids[i]
			cur, present := m[k]
			switch kid.kind {
			case kindAdd:
				if present {
					return nil, within(mismatch("expected no member, found %s", describe(cur)), k)
				}
				out[k] = kid.new
			case kindRemove:
				if !present {
					return nil, within(mismatch("expected %s, found no member", describe(kid.old)), k)
				}
				if !Equal(cur, kid.old) {
					return nil, within(mismatch("expected %s, found %s", describe(kid.old), describe(cur)), k)
				}
				delete(out, k)
			default:
				if !present {
					return nil, within(mismatch("expected a member, found none"), k)
				}
				x, err := apply(kid, cur)
				if err != nil {
					return nil, within(err, k)
				}
				out[k] = x
			}
		}
		return out, nil
	case kindArray:
		xs, ok := v.([]any)
		if !ok {
			return nil, mismatch("expected an array, found %s", describe(v))
		}
		grow := 0
		for _, h := range n.hunks {
			grow += len(h.ins)
		}
		out := make([]any, 0, len(xs)+grow)
		cur := 0
		for _, h := range n.hunks {
			if h.at < cur || h.at > len(xs) {
				return nil, mismatch("change at index %d does not fit an array of %d elements", h.at, len(xs))
			}
			out = append(out, xs[cur:h.at]...)
			if h.kid != nil {
				if h.at == len(xs) {
					return nil, mismatch("change at index %d does not fit an array of %d elements", h.at, len(xs))
				}
				x, err := apply(h.kid, xs[h.at])
				if err != nil {
					return nil, within(err, strconv.Itoa(h.at))
				}
				out = append(out, x)
				cur = h.at + 1
				continue
			}
			if h.at+len(h.del) > len(xs) {
				return nil, mismatch("removal of %d elements at index %d does not fit an array of %d elements", len(h.del), h.at, len(xs))
			}
			for k, d := range h.del {
				if !Equal(xs[h.at+k], d) {
					return nil, within(mismatch("expected %s, found %s", describe(d), describe(xs[h.at+k])), strconv.Itoa(h.at+k))
				}
			}
			out = append(out, h.ins...)
			cur = h.at + len(h.del)
		}
		out = append(out, xs[cur:]...)
		return out, nil
	}
	return nil, mismatch("a %q change cannot stand here", n.kind)
}

// describe names a value briefly for error messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		if len(x) > 40 {
			return strconv.Quote(x[:37] + "...")
		}
		return strconv.Quote(x)
	case []any:
		return fmt.Sprintf("an array of %d elements", len(x))
	case map[string]any:
		return fmt.Sprintf("an object of %d members", len(x))
	default:
		return fmt.Sprintf("a %T", v)
	}
}

func invert(n *node) *node {
	switch n.kind {
	case kindSet:
		return &node{kind: kindSet, old: n.new, new: n.old}
	case kindAdd:
		return &node{kind: kindRemove, old: n.new}
	case kindRemove:
		return &node{kind: kindAdd, new: n.old}
	case kindText:
		return &node{kind: kindText, at: n.at, oldS: n.newS, newS: n.oldS}
	case kindObject:
		m := &node{kind: kindObject, keys: n.keys, kids: make([]*node, len(n.kids))}
		for i, k := range n.kids {
			m.kids[i] = invert(k)
		}
		return m
	case kindArray:
		m := &node{kind: kindArray, hunks: make([]hunk, len(n.hunks))}
		shift := 0
		for i, h := range n.hunks {
			if h.kid != nil {
				m.hunks[i] = hunk{at: h.at + shift, kid: invert(h.kid)}
				continue
			}
			m.hunks[i] = hunk{at: h.at + shift, del: h.ins, ins: h.del}
			shift += len(h.ins) - len(h.del)
		}
		return m
	}
	return n
}
