package syntax

import (
	"fmt"
	"unicode/utf8"
)

// CodeParseError is the error code of every error Parse returns.
const CodeParseError = "queryParseError"

// Error is a syntax error in a query, in the shape of Sanity's
// queryParseError: a description and the offending span of the query.
//
// Start and End are offsets in characters (Unicode code points, runes) from
// the start of Query, End exclusive; for ASCII queries they equal byte
// offsets. Span, by contrast, holds byte offsets (NewError and CharOffset
// convert). groq-js reports JavaScript string indexes (UTF-16 code units),
// which agree with these offsets except after characters outside the Basic
// Multilingual Plane (such as emoji), which count 2 there and 1 here; which
// unit Sanity's API uses could not be confirmed from public sources.
type Error struct {
	Code        string // always "queryParseError"
	Description string // what is wrong, e.g. "expected ']' after filter"
	Start, End  int    // character offsets of the offending text, End exclusive
	Query       string // the query as given
}

// ErrorCode returns the stable error code, "queryParseError".
func (e *Error) ErrorCode() string { return e.Code }

// Error returns a sentence saying what is wrong and where.
func (e *Error) Error() string {
	return fmt.Sprintf("GROQ syntax error at character %d: %s", e.Start, e.Description)
}

// NewError returns a queryParseError for the byte span sp of query,
// converting the span to character offsets.
func NewError(query string, sp Span, description string) *Error {
	return &Error{
		Code:        CodeParseError,
		Description: description,
		Start:       CharOffset(query, sp.Start),
		End:         CharOffset(query, sp.End),
		Query:       query,
	}
}

// CharOffset converts a byte offset into query to a character (code point)
// offset. Offsets outside the query are clamped to its bounds.
func CharOffset(query string, byteOffset int) int {
	if byteOffset <= 0 {
		return 0
	}
	if byteOffset > len(query) {
		byteOffset = len(query)
	}
	return utf8.RuneCountInString(query[:byteOffset])
}
