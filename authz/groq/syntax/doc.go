// Package syntax parses GROQ (GROQ-1.revision1) into an abstract syntax tree
// with source positions. Syntax errors carry start and end offsets in the
// shape of Sanity's queryParseError.
package syntax
