package projection

import (
	"bytes"
	"encoding/json"
	"slices"
)

// spliceDiff applies the common diff of a small edit — top-level members
// added, removed or replaced, all with scalar values — to a document's JSON
// without decoding it: it copies the untouched members and splices in the
// new values. It returns ok false, and does nothing, for any other diff or
// when something does not hold what the diff expects; the caller then
// applies the diff in full, which also reports the error.
//
// doc is a stored document, which encoding/json wrote: compact, members
// sorted by name. The result is then what encoding/json writes for the
// patched document, as long as the diff's values are written as
// encoding/json writes them, which spliceDiff checks.
func spliceDiff(doc, diff []byte) ([]byte, bool) {
	var cs [8]memberChange
	changes, ok := parseMemberChanges(diff, cs[:0])
	if !ok {
		return nil, false
	}
	s := scanner{b: doc}
	if !s.byte('{') {
		return nil, false
	}
	out := make([]byte, 0, len(doc)+len(diff))
	out = append(out, '{')
	var prev []byte
	first := true
	emit := func(key, value []byte) {
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, '"')
		out = append(out, key...)
		out = append(out, '"', ':')
		out = append(out, value...)
	}
	// apply emits the changes of members named before key (additions) and
	// returns the change of key itself, if any.
	apply := func(key []byte, last bool) (*memberChange, bool) {
		for len(changes) > 0 {
			c := &changes[0]
			cmp := -1 // every remaining change comes before the end
			if !last {
				cmp = bytes.Compare(c.key, key)
			}
			if cmp > 0 {
				return nil, true
			}
			changes = changes[1:]
			if cmp == 0 {
				return c, true
			}
			if c.kind != '+' {
				return nil, false // changes a member the document lacks
			}
			emit(c.key, c.new)
		}
		return nil, true
	}
	if !s.byte('}') {
		for {
			key, ok := s.key()
			if !ok || (prev != nil && bytes.Compare(prev, key) >= 0) || !s.byte(':') {
				return nil, false
			}
			prev = key
			value, ok := s.value()
			if !ok {
				return nil, false
			}
			c, ok := apply(key, false)
			if !ok {
				return nil, false
			}
			switch {
			case c == nil:
				emit(key, value)
			case c.kind == '+' || !bytes.Equal(c.old, value):
				return nil, false // present, or not what the diff expects
			case c.kind == 's':
				emit(key, c.new)
			}
			if s.byte('}') {
				break
			}
			if !s.byte(',') {
				return nil, false
			}
		}
	}
	if s.i != len(s.b) {
		return nil, false
	}
	if _, ok := apply(nil, true); !ok {
		return nil, false
	}
	return append(out, '}'), true
}

// memberChange is one member of a diff ["o", {...}]: '+' adds new, '-'
// removes old, 's' replaces old by new.
type memberChange struct {
	kind          byte
	key, old, new []byte
}

// parseMemberChanges reads a diff ["o",{"name":change,...}] whose changes
// are all "s", "+" or "-" of scalar values written as encoding/json writes
// them, with names in increasing order and free of escapes.
func parseMemberChanges(diff []byte, out []memberChange) ([]memberChange, bool) {
	const head = `["o",{`
	if !bytes.HasPrefix(diff, []byte(head)) {
		return nil, false
	}
	s := scanner{b: diff, i: len(head)}
	for {
		key, ok := s.key()
		if !ok || (len(out) > 0 && bytes.Compare(out[len(out)-1].key, key) >= 0) {
			return nil, false
		}
		if !s.byte(':') || !s.byte('[') || !s.byte('"') || s.i+2 > len(s.b) || s.b[s.i+1] != '"' {
			return nil, false
		}
		c := memberChange{kind: s.b[s.i], key: key}
		s.i += 2
		switch c.kind {
		case 's':
			if c.old, ok = s.scalarAfterComma(); !ok || !canonical(c.old) {
				return nil, false
			}
			if c.new, ok = s.scalarAfterComma(); !ok || !canonical(c.new) {
				return nil, false
			}
		case '+':
			if c.new, ok = s.scalarAfterComma(); !ok || !canonical(c.new) {
				return nil, false
			}
		case '-':
			if c.old, ok = s.scalarAfterComma(); !ok || !canonical(c.old) {
				return nil, false
			}
		default:
			return nil, false
		}
		if !s.byte(']') {
			return nil, false
		}
		out = append(out, c)
		if s.byte('}') {
			break
		}
		if !s.byte(',') {
			return nil, false
		}
	}
	if !s.byte(']') || s.i != len(s.b) {
		return nil, false
	}
	return out, true
}

// canonical reports whether the JSON scalar v is written as encoding/json
// writes the value it stands for.
func canonical(v []byte) bool {
	switch v[0] {
	case 't', 'f', 'n':
		return true // the scanner only accepts the literals themselves
	case '"':
		for _, c := range v[1 : len(v)-1] {
			if c < 0x20 || c >= 0x80 || c == '\\' || c == '<' || c == '>' || c == '&' {
				return roundTrips(v)
			}
		}
		return true
	}
	// A small integer without leading zeros is written as such.
	digits := v
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 15 || (digits[0] == '0' && len(digits) > 1) {
		return roundTrips(v)
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return roundTrips(v)
		}
	}
	return !bytes.Equal(v, []byte("-0")) || roundTrips(v)
}

// roundTrips reports whether encoding/json writes the value v stands for as
// v.
func roundTrips(v []byte) bool {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return false
	}
	b, err := json.Marshal(x)
	return err == nil && bytes.Equal(b, v)
}

// scanner reads compact JSON written by encoding/json (no white space). It
// checks only what splicing needs; anything unexpected makes it fail, and
// never panics.
type scanner struct {
	b []byte
	i int
}

// byte consumes c if it comes next.
func (s *scanner) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// key reads a member name without escapes and returns it unquoted.
func (s *scanner) key() ([]byte, bool) {
	str, ok := s.string()
	if !ok || bytes.IndexByte(str, '\\') >= 0 {
		return nil, false
	}
	return str[1 : len(str)-1], true
}

// string reads a string and returns it with its quotes.
func (s *scanner) string() ([]byte, bool) {
	start := s.i
	if !s.byte('"') {
		return nil, false
	}
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start:s.i], true
		case c == '\\':
			s.i += 2
		case c < 0x20:
			return nil, false
		default:
			s.i++
		}
	}
	return nil, false
}

// scalarAfterComma reads ',' and a string, number, true, false or null.
func (s *scanner) scalarAfterComma() ([]byte, bool) {
	if !s.byte(',') || s.i >= len(s.b) {
		return nil, false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.string()
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
			s.i += len(lit)
			return s.b[s.i-len(lit) : s.i], true
		}
	}
	return nil, false
}

// number reads the characters a JSON number may hold; canonical (or the
// byte comparison with the document) decides whether they are one.
func (s *scanner) number() ([]byte, bool) {
	start := s.i
	for s.i < len(s.b) && slices.Contains([]byte("0123456789+-.eE"), s.b[s.i]) {
		s.i++
	}
	return s.b[start:s.i], s.i > start
}

// value skips any value (nested ones by their brackets, which must match,
// and strings) and returns its bytes.
func (s *scanner) value() ([]byte, bool) {
	start := s.i
	var open [32]byte
	depth := 0
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case '"':
			if _, ok := s.string(); !ok {
				return nil, false
			}
			if depth == 0 {
				return s.b[start:s.i], true
			}
			continue
		case '{', '[':
			if depth == len(open) {
				return nil, false
			}
			open[depth] = c + 2 // '}' and ']' follow '{' and '[' by 2
			depth++
		case '}', ']':
			if depth == 0 {
				return s.b[start:s.i], s.i > start
			}
			depth--
			if open[depth] != c {
				return nil, false
			}
			if depth == 0 {
				s.i++
				return s.b[start:s.i], true
			}
		case ',':
			if depth == 0 {
				return s.b[start:s.i], s.i > start
			}
		case ' ', '\t', '\n', '\r':
			return nil, false // not compact: not written by encoding/json
		}
		s.i++
	}
	return nil, false
}
