package authz

import (
	"testing"

	"github.com/vellum-db/vellum/authz/groq"
)

// TestTypePrecheck checks that the _type pre-check never changes a
// decision: the filter's own value agrees on documents of every kind.
func TestTypePrecheck(t *testing.T) {
	docs := []map[string]any{
		{"_id": "a", "_type": "post", "author": "alice"},
		{"_id": "b", "_type": "page", "author": "alice"},
		{"_id": "c", "author": "alice"},
		{"_id": "d", "_type": 7.0, "author": "alice"},
		{"_id": "e", "_type": nil, "author": "alice"},
		{"_id": "f", "_type": []any{"post"}, "author": "alice"},
	}
	for _, src := range []string{
		`_type == "post" && author == identity()`,
		`_type in ["post", "page"] && defined(author)`,
		`"page" == _type && true`,
	} {
		f, err := compileFilter(src)
		if err != nil {
			t.Fatal(err)
		}
		if f.types == nil {
			t.Fatalf("%s: no pre-check", src)
		}
		env := &groq.Env{Identity: "alice", Now: testNow}
		for _, d := range docs {
			v, err := f.eval(env, d)
			if err != nil {
				t.Fatalf("%s on %v: %v", src, d, err)
			}
			if got, want := f.match(env, d), v == true; got != want {
				t.Errorf("%s on %v: match %v, but the filter's value is %v", src, d, got, v)
			}
		}
	}
}
