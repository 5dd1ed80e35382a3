// Package groq compiles GROQ expressions into CEL programs that keep GROQ's
// semantics, caches them by text, and evaluates them: as filters over one
// document (grants, listeners), as selections over a dataset, or as whole
// queries.
//
// # Translation
//
// Compile parses the expression (package syntax) and writes CEL source
// text, which Program.CEL returns; the text is compiled once in one shared
// cel.Env and the program is cached by (mode, text) in a bounded LRU cache
// (CacheSize programs). For example
//
//	_type == "post" && author == identity()
//
// compiles to
//
//	and(eq(get(s0, "_type"), "post"), eq(get(s0, "author"), identity))
//
// Every GROQ operator and function is a CEL function of the library in
// funcs.go, declared over dyn values, that implements GROQ's semantics
// rather than CEL's: get is null for a missing attribute or a non-object;
// eq is GROQ equality (same scalar type and value; arrays and objects are
// never equal); lt/lte/gt/gte are null for values of different types
// (a datetime and a string included); and/or/not are three-valued (false &&
// null is false, true && null is null); arithmetic on wrong types, and
// non-finite results, are null; + concatenates strings and arrays and
// merges objects; numbers are float64. A filter selects a value only when
// it yields exactly true.
//
// GROQ's traversals (a[].b{c}, *[cond].x, a->b) are resolved at compile
// time with the spec's traversal algebra into explicit maps and flat-maps.
// Scopes are CEL variables: s0 is the root @, each filter, projection,
// order key and map binds a fresh variable (CEL's filter and map macros,
// or cel.bind), and ^ is the variable of the enclosing scope, chosen at
// compile time. In ModeQuery, * is the variable dataset (Env.Dataset) and
// -> looks the _ref up in an id index built once per Env.
//
// # Modes
//
// ModeFilter is for grant and listener filters: everything that needs
// other documents (*, and so subqueries; ->; ^) and the pipe functions are
// rejected at compile time with an *Error of code invalidFilter naming the
// construct and its position. identity() is Env.Identity and now() is
// Env.Now, fixed by the caller per transaction. Parameters are allowed
// (listener queries have them); Program.Params lists them so that a caller
// storing a grant can refuse them.
//
// # Evaluation cost
//
// Every evaluation is bounded by a CEL cost limit (FilterCostLimit,
// QueryCostLimit). When CEL's static cost estimator proves that a
// program's worst case is within the limit (the library tells it which
// functions are constant-time and which grow with their input), the
// program runs without runtime tracking; otherwise CEL tracks the cost of
// every operation, the library charging by the size of its inputs, and an
// evaluation past the limit ends with a queryEvalError. match with a
// literal pattern and path() patterns that need a regular expression are
// linear in the text they read: the estimate counts them as constant and
// they charge the text's length at run time, to CEL's tracker when there
// is one, else to the budget the static estimate leaves under the limit
// (plan.go). Either way no evaluation costs more than the limit.
//
// # Performance
//
// Documents are not converted: a map[string]any is wrapped in a read-only
// CEL object, and an attribute is converted only when read, strings and
// numbers without allocating (box.go). CEL plans each program into a tree
// of interpreter nodes; a planner decorator replaces the library's calls
// with nodes of this package (plan.go): direct calls without CEL's
// per-call type guards, && and || over all their terms stopping at the
// first false (true) term, attribute paths walked in the Go maps, and
// comparisons, match patterns and path patterns with literal operands
// compiled when the program is planned. An untracked program's plan runs
// directly in a frame held by the pooled activation. Match evaluates the
// three benchmark filters without allocating. See BenchmarkFilter, which
// runs the filters of testdata/bench/filters.txt on testdata/bench/doc.json
// next to the same filters hand-written in Go, and BenchmarkVsGroqJS.
//
// Custom functions (fn ns::name($p) = body; …) are inlined at their call
// sites, each argument bound to a CEL variable. diff::changedAny and
// diff::changedOnly compile their selector when the query is compiled;
// conditions inside a selector are evaluated with an empty Env. The score
// pipe follows groq-js's scoring (term frequency for match, boost adds).
//
// # Not implemented
//
// pt:: functions other than pt::text, geo::, sanity:: and releases::
// functions,
// dateTime::now() and the delta-mode functions (before(), after(),
// delta::) are queryNotSupported errors; the conformance test lists the
// suite's tests it skips for them.
package groq
