package syntax

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// kind is the kind of a token.
type kind int

const (
	tEOF kind = iota
	tIdent
	tParam // $name; text is the name
	tNumber
	tString // text is the decoded value
	tPunct  // operators and punctuation; text is the spelling
)

// token is one lexical token. Start and End are byte offsets.
type token struct {
	kind       kind
	text       string
	num        float64
	start, end int
}

// lexer splits a query into tokens on demand.
type lexer struct {
	src string
	pos int
}

// punctList lists the operators and punctuation, longest first so that the
// first prefix match is the longest one.
var punctList = []string{
	"...", "..", "->", "=>", "==", "!=", "<=", ">=", "&&", "||", "**", "::",
	".", "[", "]", "{", "}", "(", ")", ",", ":", ";", "|", "!", "<", ">",
	"+", "-", "*", "/", "%", "@", "^", "=",
}

// puncts indexes punctList by first byte.
var puncts = func() (idx [utf8.RuneSelf][]string) {
	for _, p := range punctList {
		idx[p[0]] = append(idx[p[0]], p)
	}
	return idx
}()

// skip skips white space and comments.
func (lx *lexer) skip() {
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
			lx.pos++
		case c == 0xC2 && lx.pos+1 < len(lx.src) && (lx.src[lx.pos+1] == 0x85 || lx.src[lx.pos+1] == 0xA0):
			lx.pos += 2 // U+0085 NEXT LINE, U+00A0 NO-BREAK SPACE
		case c == '/' && strings.HasPrefix(lx.src[lx.pos:], "//"):
			nl := strings.IndexByte(lx.src[lx.pos:], '\n')
			if nl < 0 {
				lx.pos = len(lx.src)
			} else {
				lx.pos += nl + 1
			}
		default:
			return
		}
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// next returns the next token.
func (lx *lexer) next() (token, *lexError) {
	lx.skip()
	start := lx.pos
	if start >= len(lx.src) {
		return token{kind: tEOF, start: start, end: start}, nil
	}
	c := lx.src[start]
	switch {
	case isIdentStart(c):
		end := start + 1
		for end < len(lx.src) && isIdentChar(lx.src[end]) {
			end++
		}
		lx.pos = end
		return token{kind: tIdent, text: lx.src[start:end], start: start, end: end}, nil
	case c == '$':
		end := start + 1
		if end >= len(lx.src) || !isIdentStart(lx.src[end]) {
			return token{}, &lexError{Span{start, start + 1}, "expected a parameter name after $"}
		}
		for end < len(lx.src) && isIdentChar(lx.src[end]) {
			end++
		}
		lx.pos = end
		return token{kind: tParam, text: lx.src[start+1 : end], start: start, end: end}, nil
	case isDigit(c):
		return lx.number()
	case c == '"' || c == '\'':
		return lx.string()
	}
	if c < utf8.RuneSelf {
		for _, p := range puncts[c] {
			if strings.HasPrefix(lx.src[start:], p) {
				lx.pos = start + len(p)
				return token{kind: tPunct, text: p, start: start, end: lx.pos}, nil
			}
		}
	}
	r, size := utf8.DecodeRuneInString(lx.src[start:])
	if r == utf8.RuneError && size == 1 {
		return token{}, &lexError{Span{start, start + 1}, "query is not valid UTF-8"}
	}
	return token{}, &lexError{Span{start, start + size}, "unexpected character " + strconv.QuoteRune(r)}
}

// lexError is a lexical error at a span.
type lexError struct {
	span Span
	msg  string
}

// number scans Digit+ ("." Digit+)? ([eE] [+-]? Digit+)?.
func (lx *lexer) number() (token, *lexError) {
	s := lx.src
	start := lx.pos
	end := start
	for end < len(s) && isDigit(s[end]) {
		end++
	}
	if end+1 < len(s) && s[end] == '.' && isDigit(s[end+1]) {
		end++
		for end < len(s) && isDigit(s[end]) {
			end++
		}
	}
	if end < len(s) && (s[end] == 'e' || s[end] == 'E') {
		e := end + 1
		if e < len(s) && (s[e] == '+' || s[e] == '-') {
			e++
		}
		if e >= len(s) || !isDigit(s[e]) {
			return token{}, &lexError{Span{start, e}, "expected digits in the exponent of a number"}
		}
		for e < len(s) && isDigit(s[e]) {
			e++
		}
		end = e
	}
	if end < len(s) && isIdentStart(s[end]) {
		return token{}, &lexError{Span{start, end + 1}, "invalid number literal"}
	}
	v, err := strconv.ParseFloat(s[start:end], 64)
	if err != nil && !isRangeErr(err) {
		return token{}, &lexError{Span{start, end}, "invalid number literal"}
	}
	lx.pos = end
	return token{kind: tNumber, text: s[start:end], num: v, start: start, end: end}, nil
}

// isRangeErr reports whether err is strconv's out-of-range error, for which
// ParseFloat still returns the correctly rounded value (±Inf or 0).
func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// string scans a single- or double-quoted string literal and decodes its
// escapes.
func (lx *lexer) string() (token, *lexError) {
	s := lx.src
	start := lx.pos
	quote := s[start]
	var b strings.Builder
	i := start + 1
	for {
		if i >= len(s) {
			return token{}, &lexError{Span{start, len(s)}, "unterminated string literal"}
		}
		c := s[i]
		switch {
		case c == quote:
			lx.pos = i + 1
			return token{kind: tString, text: b.String(), start: start, end: i + 1}, nil
		case c == '\\':
			r, n, err := unescape(s, i)
			if err != nil {
				return token{}, err
			}
			b.WriteRune(r)
			i += n
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return token{}, &lexError{Span{i, i + 1}, "query is not valid UTF-8"}
			}
			b.WriteString(s[i : i+size])
			i += size
		}
	}
}

// unescape decodes the escape sequence at s[i] (a backslash) and returns the
// character and the length of the sequence.
func unescape(s string, i int) (rune, int, *lexError) {
	if i+1 >= len(s) {
		return 0, 0, &lexError{Span{i, len(s)}, "unterminated escape sequence"}
	}
	switch s[i+1] {
	case '\'', '"', '\\', '/':
		return rune(s[i+1]), 2, nil
	case 'b':
		return '\b', 2, nil
	case 'f':
		return '\f', 2, nil
	case 'n':
		return '\n', 2, nil
	case 'r':
		return '\r', 2, nil
	case 't':
		return '\t', 2, nil
	case 'u':
		return unescapeUnicode(s, i)
	}
	_, size := utf8.DecodeRuneInString(s[i+1:])
	return 0, 0, &lexError{Span{i, i + 1 + size}, "invalid escape sequence " + strconv.Quote(s[i:i+1+size])}
}

// unescapeUnicode decodes \uXXXX (with a following low surrogate when XXXX
// is a high surrogate) or \u{X...}.
func unescapeUnicode(s string, i int) (rune, int, *lexError) {
	if i+2 < len(s) && s[i+2] == '{' {
		j := i + 3
		var v int64
		for j < len(s) && isHex(s[j]) {
			if v <= utf8.MaxRune {
				v = v<<4 | int64(hexVal(s[j]))
			}
			j++
		}
		if j == i+3 || j >= len(s) || s[j] != '}' {
			return 0, 0, &lexError{Span{i, min(j+1, len(s))}, `invalid escape sequence: \u{ must be followed by hex digits and }`}
		}
		if v > utf8.MaxRune || 0xD800 <= v && v <= 0xDFFF {
			return 0, 0, &lexError{Span{i, j + 1}, "escape sequence " + strconv.Quote(s[i:j+1]) + " is not a valid Unicode code point"}
		}
		return rune(v), j + 1 - i, nil
	}
	r, ok := hex4(s, i+2)
	if !ok {
		return 0, 0, &lexError{Span{i, min(i+6, len(s))}, `invalid escape sequence: \u must be followed by four hex digits`}
	}
	switch {
	case 0xD800 <= r && r <= 0xDBFF:
		if i+7 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
			if lo, ok := hex4(s, i+8); ok && 0xDC00 <= lo && lo <= 0xDFFF {
				return (r-0xD800)<<10 | (lo - 0xDC00) + 0x10000, 12, nil
			}
		}
		return 0, 0, &lexError{Span{i, i + 6}, "escape sequence " + strconv.Quote(s[i:i+6]) + " is a high surrogate without a low surrogate"}
	case 0xDC00 <= r && r <= 0xDFFF:
		return 0, 0, &lexError{Span{i, i + 6}, "escape sequence " + strconv.Quote(s[i:i+6]) + " is a lone low surrogate"}
	}
	return r, 6, nil
}

// hex4 decodes the four hex digits at s[i:i+4].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for k := i; k < i+4; k++ {
		if !isHex(s[k]) {
			return 0, false
		}
		r = r<<4 | rune(hexVal(s[k]))
	}
	return r, true
}

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
