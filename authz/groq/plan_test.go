package groq

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPlanEquivalence evaluates filters that exercise every node of
// plan.go (and/or chains with nulls, get chains through non-objects,
// count, attrCmp with each operator, attrMatch with exact, prefix and
// glob terms over strings and arrays, inPath with prefix, exact and glob
// patterns, identity) on random documents, once with the plan's own
// nodes and once with CEL's plan of the same program: the values must be
// the same.
func TestPlanEquivalence(t *testing.T) {
	filters := []string{
		`_type == "post" && author == identity()`,
		`_type == "post" || author == identity() || n > 1`,
		`a && b && c`, `a || b || c`, `(a && b) || (c && a)`, `!(a && b) || c`,
		`_id in path("drafts.**")`, `_id in path("drafts.*")`, `_id in path("a.*.c")`, `_id in path("p1")`, `n in path("**")`,
		`defined(slug.current)`, `defined(slug)`, `slug.current == "x"`, `slug.current.deep != null`,
		`n > 1`, `n >= 1`, `n < 1`, `n <= 1`, `n == 1`, `n != 1`, `s < "m"`, `s >= "m"`, `1 < n`, `"m" > s`,
		`_type in ["post", "article", 1, null, true]`, `n in [1, 2.5]`, `s in []`,
		`s match "groq*"`, `s match "gr*q"`, `s match "g.oq"`, `s match "GROQ cel"`, `s match "*"`, `s match ""`,
		`tags match "a*"`, `tags match "x y"`, `n match "1"`, `slug.current match "ab*"`,
		`count(tags) > 1`, `count(tags)`, `count(s)`, `count(slug.current)`,
		`slug.current`, `tags`, `slug`, `identity()`,
		`n > 1 && count(tags) >= 1 && author == identity() && s != slug.current`, `count(tags) > n || n < count(tags) || slug.current == "ab"`,
		`identity() == author || (n == 2.5 && s match "a*")`, `author != identity() || count(slug.current) == 1 || tags match "ab"`,
		`author == identity()`, `identity() != author`, `s == slug.current`, `slug.current != s`, `tags == tags`, `slug == slug`, `n == a`, `a != n`,
		`_type in ["post", "article"] && defined(slug.current) && s match "groq*" && status != "archived" && n >= 2 && count(tags) > 1`,
		`tags[@ == "a"]`, `tags[@ match "a*"]`, `count([1, 2][s match "a*"])`, `[{"s": 1}, {"s": "ab"}][s match "a*"]`, `*[_type == "post"][0]._type == _type`,
	}
	r := rand.New(rand.NewPCG(1, 2))
	scalars := []any{nil, true, false, 0.0, 1.0, 2.0, 2.5, -1.0, "", "a", "m", "z", "post", "article", "groq", "GROQ filters", "drafts.p1", "a.b.c", "p1", "gr-oq. e.g. cel", "Ünïcode groq", "x", "ab", "abc", "GROQ cel", "x y", "goq", "1", map[string]any{}, []any{}, []any{"ab", 1.0}}
	var value func(depth int) any
	value = func(depth int) any {
		switch r.IntN(6) {
		case 0:
			if depth < 2 {
				return map[string]any{"current": value(depth + 1), "deep": scalars[r.IntN(len(scalars))]}
			}
		case 1:
			n := r.IntN(4)
			l := make([]any, n)
			for i := range l {
				l[i] = scalars[r.IntN(len(scalars))]
			}
			return l
		}
		return scalars[r.IntN(len(scalars))]
	}
	var docs []map[string]any
	for range 1000 {
		d := map[string]any{}
		for _, k := range []string{"_id", "_type", "author", "a", "b", "c", "n", "s", "slug", "status", "tags"} {
			if r.IntN(5) > 0 {
				d[k] = value(0)
			}
		}
		docs = append(docs, d)
	}
	env := &Env{Identity: "a", Dataset: []any{map[string]any{"_type": "post"}}}
	varied, matches := 0, 0 // the documents must make the filters vary
	for _, mode := range []Mode{ModeQuery} {
		for _, f := range filters {
			planOwnNodes = true
			own, err := compile(f, mode, nil)
			planOwnNodes = false
			cels, err2 := compile(f, mode, nil)
			planOwnNodes = true
			if err != nil || err2 != nil {
				t.Fatalf("%s: %v / %v", f, err, err2)
			}
			seen := map[string]bool{}
			for _, d := range docs {
				v1, e1 := own.Eval(env, d)
				v2, e2 := cels.Eval(env, d)
				j1, _ := json.Marshal(v1)
				j2, _ := json.Marshal(v2)
				seen[string(j1)] = true
				if string(j1) != string(j2) || fmt.Sprint(e1) != fmt.Sprint(e2) {
					dj, _ := json.Marshal(d)
					t.Errorf("%s on %s: own plan %s (%v), CEL's plan %s (%v)", f, dj, j1, e1, j2, e2)
				}
				m1, e1 := own.Match(env, d)
				m2, e2 := cels.Match(env, d)
				if m1 {
					matches++
				}
				if m1 != m2 || fmt.Sprint(e1) != fmt.Sprint(e2) {
					t.Errorf("%s: Match own plan %v (%v), CEL's plan %v (%v)", f, m1, e1, m2, e2)
				}
			}
			if len(seen) > 1 {
				varied++
			} else {
				t.Logf("%s: always %v", f, seen)
			}
		}
	}
	// s in [], s match "", identity() and the two filters of literal
	// arrays (untracked programs whose match runs inside a comprehension)
	// are constant; the six-clause filter may be false throughout.
	if varied < len(filters)-6 || matches < len(filters)*10 {
		t.Errorf("only %d of %d filters take more than one value, %d matches: the documents do not exercise the filters", varied, len(filters), matches)
	}
}
