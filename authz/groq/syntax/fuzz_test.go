package syntax

import (
	"errors"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, answers quickly, fails only
// with *Error whose offsets lie within the query, and that formatting a
// parsed tree parses back to the same tree. Seeds: the queries of the
// conformance suite (when present) and the test tables.
func FuzzParse(f *testing.F) {
	for _, q := range []string{
		`*[_type == "post" && author == identity()]`,
		`_id in path("drafts.**")`,
		`*[_type == "post"]{title, "a": author->name, ...}[0...10] | order(a desc)`,
		`fn ns::f($x) = $x[]->{a}; ns::f(b)`,
		`diff::changedAny(a, b, (x, y.(z, w[q == 1])))`,
		`"\uD83D\uDE00 \u{1F600}" match 'x*'`,
		`-2 ** -3 ** 2 % 4 in 1...5`,
		`select(a => 1, 2)`,
		`* | score(boost(a, 2)) | order(_score desc)`,
	} {
		f.Add(q)
	}
	if path, missing := findSuite(); missing == "" {
		tests, err := readSuite(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, st := range tests {
			f.Add(st.Query)
		}
	}
	f.Fuzz(func(t *testing.T, query string) {
		start := time.Now()
		n, err := Parse(query)
		if d := time.Since(start); d > time.Second && len(query) < 1<<16 {
			t.Errorf("Parse took %v on %d bytes", d, len(query))
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if e.Code != CodeParseError || e.Start < 0 || e.Start > e.End || e.End > len([]rune(query)) {
				t.Fatalf("bad error %+v for a query of %d characters", e, len([]rune(query)))
			}
			return
		}
		checkSpans(t, query, n)
		checkRoundTrip(t, query, n)
	})
}
