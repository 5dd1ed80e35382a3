package syntax

// MaxDepth is the deepest nesting of expressions Parse accepts (brackets,
// parentheses, operator chains of prefix operators and the like). Deeper
// queries are rejected with an *Error instead of exhausting the stack.
const MaxDepth = 256

// Parse parses a GROQ query (GROQ-1.revision1, plus custom function
// declarations) and returns its syntax tree. Besides the grammar it checks
// what GROQ rejects at parse time: unknown functions and wrong arities (see
// Functions), => outside select() and objects, asc/desc outside order(),
// boost() outside score(), slices with non-constant bounds, object entries
// without a derivable key, and diff selector syntax. The error is an *Error.
func Parse(query string) (Node, error) {
	return nil, NewError(query, Span{0, len(query)}, "parser not implemented yet")
}
