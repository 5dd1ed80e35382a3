package mutation

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A Path selects values inside a document, in Sanity's patch path syntax
// (a subset of JSONMatch):
//
//	title              the member title
//	a.b                member b of member a
//	a["odd key"]       a member by quoted name ('single' quotes too)
//	a[0], a[-1]        an array element by index, negative from the end
//	a[_key=="k"]       the array elements whose _key is "k" ('k' too)
//	a[*], a.*          every element of an array (every member of an object)
//	a[1:3], a[2:], a[:-1]  a range of array elements (end exclusive)
type Path struct {
	text string
	segs []segment
}

type segKind uint8

const (
	segAttr  segKind = iota // member by name
	segIndex                // array element by index
	segKey                  // array elements by _key
	segAll                  // every element or member
	segSlice                // array elements in a range
)

type segment struct {
	kind           segKind
	name           string // segAttr: member name; segKey: the key
	index          int    // segIndex
	from, to       int    // segSlice
	hasFrom, hasTo bool   // segSlice: whether the bound was given
}

// String returns the path as it was written.
func (p Path) String() string { return p.text }

// MaxPathLength bounds the length of a path, in bytes.
const MaxPathLength = 4096

// ParsePath parses a patch path. The error is an *Error with code
// invalidPatchPath, Index -1 and Details {"path", "position"}, position
// being the byte offset of the problem in the path.
func ParsePath(s string) (Path, error) {
	p := pathParser{s: s}
	segs, err := p.parse()
	if err != nil {
		return Path{}, err
	}
	return Path{text: s, segs: segs}, nil
}

type pathParser struct {
	s   string
	pos int
}

func (p *pathParser) fail(pos int, format string, args ...any) *Error {
	return &Error{
		Code:        CodeInvalidPatchPath,
		Index:       -1,
		Description: fmt.Sprintf("invalid path %q at offset %d: %s", p.s, pos, fmt.Sprintf(format, args...)),
		Details:     map[string]any{"path": p.s, "position": pos},
	}
}

func (p *pathParser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *pathParser) parse() ([]segment, error) {
	if p.s == "" {
		return nil, p.fail(0, "the path is empty")
	}
	if len(p.s) > MaxPathLength {
		return nil, p.fail(MaxPathLength, "the path is longer than %d bytes", MaxPathLength)
	}
	if !utf8.ValidString(p.s) {
		return nil, p.fail(0, "the path is not valid UTF-8")
	}
	var segs []segment
	for first := true; p.pos < len(p.s); first = false {
		switch c := p.peek(); {
		case c == '[':
			seg, err := p.bracket()
			if err != nil {
				return nil, err
			}
			segs = append(segs, seg)
		case c == '.' && !first:
			p.pos++
			if p.pos == len(p.s) {
				return nil, p.fail(p.pos, "the path ends with '.'")
			}
			seg, err := p.attr()
			if err != nil {
				return nil, err
			}
			segs = append(segs, seg)
		case first:
			seg, err := p.attr()
			if err != nil {
				return nil, err
			}
			segs = append(segs, seg)
		default:
			return nil, p.fail(p.pos, "expected '.' or '[', found %s", p.describe())
		}
	}
	return segs, nil
}

func (p *pathParser) describe() string {
	if p.pos >= len(p.s) {
		return "the end of the path"
	}
	r, _ := utf8.DecodeRuneInString(p.s[p.pos:])
	return strconv.QuoteRune(r)
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// attr parses a member name or '*'.
func (p *pathParser) attr() (segment, error) {
	if p.peek() == '*' {
		p.pos++
		return segment{kind: segAll}, nil
	}
	start := p.pos
	if c := p.peek(); c >= '0' && c <= '9' {
		end := start
		for end < len(p.s) && p.s[end] != '.' && p.s[end] != '[' {
			end++
		}
		return segment{}, p.fail(p.pos, "a member name cannot start with a digit; write it in brackets: [%q]", p.s[start:end])
	}
	if !isIdentStart(p.peek()) {
		return segment{}, p.fail(p.pos, "expected a member name (a letter, '_' or '$' first), found %s", p.describe())
	}
	for p.pos < len(p.s) && isIdentPart(p.s[p.pos]) {
		p.pos++
	}
	return segment{kind: segAttr, name: p.s[start:p.pos]}, nil
}

func (p *pathParser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

func (p *pathParser) expect(c byte) error {
	p.skipSpace()
	if p.peek() != c {
		return p.fail(p.pos, "expected %q, found %s", c, p.describe())
	}
	p.pos++
	return nil
}

// bracket parses [...] after the current position.
func (p *pathParser) bracket() (segment, error) {
	open := p.pos
	p.pos++ // '['
	p.skipSpace()
	var seg segment
	switch c := p.peek(); {
	case c == 0:
		return segment{}, p.fail(open, "unclosed '['")
	case c == '*':
		p.pos++
		seg = segment{kind: segAll}
	case c == '"' || c == '\'':
		name, err := p.quoted()
		if err != nil {
			return segment{}, err
		}
		seg = segment{kind: segAttr, name: name}
	case c == '-' || c == ':' || c >= '0' && c <= '9':
		var err error
		seg, err = p.indexOrSlice()
		if err != nil {
			return segment{}, err
		}
	case isIdentStart(c):
		start := p.pos
		for p.pos < len(p.s) && isIdentPart(p.s[p.pos]) {
			p.pos++
		}
		if name := p.s[start:p.pos]; name != "_key" {
			return segment{}, p.fail(start, "only _key can be matched in brackets, found %q (filters are not supported)", name)
		}
		p.skipSpace()
		if !strings.HasPrefix(p.s[p.pos:], "==") {
			return segment{}, p.fail(p.pos, "expected '==' after _key, found %s", p.describe())
		}
		p.pos += 2
		p.skipSpace()
		if c := p.peek(); c != '"' && c != '\'' {
			return segment{}, p.fail(p.pos, "expected a quoted key after '==', found %s", p.describe())
		}
		key, err := p.quoted()
		if err != nil {
			return segment{}, err
		}
		seg = segment{kind: segKey, name: key}
	default:
		return segment{}, p.fail(p.pos, "expected an index, a range, '*', a quoted name or _key==\"...\" in brackets, found %s", p.describe())
	}
	if err := p.expect(']'); err != nil {
		if p.pos >= len(p.s) {
			return segment{}, p.fail(open, "unclosed '['")
		}
		return segment{}, err
	}
	return seg, nil
}

func (p *pathParser) integer() (int, error) {
	start := p.pos
	if p.peek() == '-' {
		p.pos++
	}
	digits := p.pos
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	if p.pos == digits {
		return 0, p.fail(p.pos, "expected digits, found %s", p.describe())
	}
	n, err := strconv.Atoi(p.s[start:p.pos])
	if err != nil || n > 1<<31-1 || n < -(1<<31) {
		return 0, p.fail(start, "index %s is out of range", p.s[start:p.pos])
	}
	return n, nil
}

func (p *pathParser) indexOrSlice() (segment, error) {
	seg := segment{kind: segIndex}
	if p.peek() != ':' {
		n, err := p.integer()
		if err != nil {
			return segment{}, err
		}
		seg.index, seg.from, seg.hasFrom = n, n, true
		p.skipSpace()
		if p.peek() != ':' {
			return seg, nil
		}
	}
	p.pos++ // ':'
	seg.kind, seg.index = segSlice, 0
	p.skipSpace()
	if c := p.peek(); c == '-' || c >= '0' && c <= '9' {
		n, err := p.integer()
		if err != nil {
			return segment{}, err
		}
		seg.to, seg.hasTo = n, true
	}
	return seg, nil
}

// quoted parses a string in double or single quotes with JSON-style
// escapes (and \' inside single quotes).
func (p *pathParser) quoted() (string, error) {
	q := p.s[p.pos]
	start := p.pos
	p.pos++
	var b strings.Builder
	for {
		if p.pos >= len(p.s) {
			return "", p.fail(start, "unterminated string")
		}
		c := p.s[p.pos]
		switch {
		case c == q:
			p.pos++
			return b.String(), nil
		case c == '\\':
			if p.pos+1 >= len(p.s) {
				return "", p.fail(p.pos, "unterminated escape")
			}
			e := p.s[p.pos+1]
			switch e {
			case '"', '\'', '\\', '/':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'u':
				if p.pos+6 > len(p.s) {
					return "", p.fail(p.pos, "incomplete \\u escape")
				}
				n, err := strconv.ParseUint(p.s[p.pos+2:p.pos+6], 16, 16)
				if err != nil {
					return "", p.fail(p.pos, "invalid \\u escape %q", p.s[p.pos:p.pos+6])
				}
				b.WriteRune(rune(n))
				p.pos += 4
			default:
				return "", p.fail(p.pos, "unknown escape \\%c", e)
			}
			p.pos += 2
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}
