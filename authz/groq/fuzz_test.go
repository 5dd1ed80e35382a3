package groq

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var fuzzSeeds = []string{
	`_type == "post" && author == identity()`,
	`_id in path("drafts.**")`,
	`_type in ["post", "article"] && defined(slug.current) && title match "groq*" && status != "archived" && priority >= 2 && count(tags) > 1`,
	`*[_type == "post"]{_id, "a": author->name, tags[]}[0..2]`,
	`*[_type == "post"] | order(n desc, _id)[0]._id`,
	`*[_id == ^._id]{..., "x": ^.^.y}`,
	`select(a > 1 => "x", b => [1, ...c], {"k": d})`,
	`[1, 2, 3][@ > 1][].x.y->z`,
	`round(n, 2) + 1 ** 2 / 3 % 4 - -5`,
	`string::split(title, " ")[0] in "a"..."z"`,
	`array::join(array::unique(array::compact(tags)), ",")`,
	`math::sum(*[].n) > math::avg([1, 2]) || !(math::min([]) == null)`,
	`references("u1") && dateTime(_createdAt) < dateTime(now()) - 60`,
	`coalesce(a, b, c) match ["x*", "y"]`,
	`$p[$q] == lower(upper(string(1e300)))`,
	`(((((a)))))[0][1][2]{b}`,
	`"x.y" in path("*.**.*")`,
	`diff::changedAny(@, {"a": 2}, (a, c[]).(x, anywhere(_type == "post")))`,
	`diff::changedOnly({"a": [1, 2]}, {"a": [1, 3]}, a[@ > 1])`,
	`fn f::g($x) = $x[]{_id}; f::g(*[n > 1])`,
	`* | score(boost(title match "groq", 2), n > 1) | order(_score desc)[0]._id`,
	`pt::text([{"_type": "block", "children": [{"_type": "span", "text": "hi"}]}])`,
}

var fuzzDoc = map[string]any{
	"_id": "drafts.p1", "_type": "post", "title": "Hello GROQ world", "n": 3.0, "author": map[string]any{"_ref": "u1"},
	"tags": []any{"a", nil, "b", "a"}, "slug": map[string]any{"current": "hello"}, "_createdAt": "2026-01-01T00:00:00Z",
	"a": 1.0, "b": true, "c": []any{1.0, "x"}, "d": nil,
}

var fuzzEnv = &Env{
	Identity: "u1",
	Now:      time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
	Params:   map[string]any{"p": []any{1.0, "a"}, "q": 0.0},
	Dataset: []any{
		fuzzDoc,
		map[string]any{"_id": "u1", "_type": "user", "name": "Ada", "n": 1.0},
		map[string]any{"_id": "p2", "_type": "post", "author": map[string]any{"_ref": "u1"}, "n": 2.0, "tags": []any{}},
	},
}

// FuzzCompile compiles random expressions in both modes and evaluates the
// ones that compile: no panic, typed errors only, bounded time.
func FuzzCompile(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		if len(expr) > 2000 {
			return
		}
		for _, mode := range []Mode{ModeQuery, ModeFilter} {
			start := time.Now()
			p, err := Compile(expr, mode)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("%q: untyped compile error %v", expr, err)
				}
				continue
			}
			if mode == ModeFilter {
				_, err = p.Match(fuzzEnv, fuzzDoc)
			} else {
				_, err = p.Eval(fuzzEnv, fuzzDoc)
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("%q: untyped eval error %v", expr, err)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("%q (%v): took %v", expr, mode, d)
			}
		}
	})
}

// TestFuzzSeeds checks that the seeds compile (so the corpus starts from
// valid queries) and evaluate without error.
func TestFuzzSeeds(t *testing.T) {
	for _, s := range fuzzSeeds {
		p, err := Compile(s, ModeQuery)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if _, err := p.Eval(fuzzEnv, fuzzDoc); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

// TestDeepQueries checks that deeply nested and long queries end with a
// value or a typed error (never a panic or a stall).
func TestDeepQueries(t *testing.T) {
	for _, tc := range []struct {
		query string
		code  string // "" when the query must evaluate
	}{
		{strings.Repeat("[", 250) + strings.Repeat("]", 250), ""},
		{strings.Repeat("(", 250) + "1" + strings.Repeat(")", 250), ""},
		{"a" + strings.Repeat(".b", 2000), CodeParseError},
		{"*" + strings.Repeat("[x]", 200), ""},
		{"*" + strings.Repeat("{a}", 200), ""},
		{strings.Repeat("!", 250) + "true", ""},
		{"1" + strings.Repeat(" + 1", 5000), CodeParseError},
		{"*[" + strings.Repeat("*[", 100) + "true" + strings.Repeat("]", 100) + "]", CodeEvalError}, // 3^100 iterations
	} {
		start := time.Now()
		p, err := Compile(tc.query, ModeQuery)
		if err == nil {
			_, err = p.Eval(fuzzEnv, fuzzDoc)
		}
		code := ""
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%.40q: untyped error %v", tc.query, err)
			}
			code = e.Code
		}
		if code != tc.code {
			t.Errorf("%.40q: got error code %q (%v), want %q", tc.query, code, err, tc.code)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("%.40q: took %v", tc.query, d)
		}
	}
}
