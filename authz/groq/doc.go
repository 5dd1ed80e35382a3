// Package groq compiles GROQ expressions into CEL programs that keep GROQ's
// semantics, caches them by text, and evaluates them: as filters over one
// document (grants, listeners), as selections over a dataset, or as whole
// queries.
package groq
