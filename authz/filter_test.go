package authz

import (
	"slices"
	"testing"

	"github.com/vellum-db/vellum/authz/groq"
	"github.com/vellum-db/vellum/authz/groq/syntax"
)

func TestFilterAnalysis(t *testing.T) {
	tests := []struct {
		filter       string
		types        []string // nil: no pre-check
		usesIdentity bool
	}{
		{`_type == "post"`, []string{"post"}, false},
		{`"post" == _type`, []string{"post"}, false},
		{`@._type == "post"`, []string{"post"}, false},
		{`_type == "post" && author == identity()`, []string{"post"}, true},
		{`author == identity() && (_type == "post")`, []string{"post"}, true},
		{`_type in ["post", "page"] && defined(title)`, []string{"post", "page"}, false},
		{`_type in ["post", "page"] && _type == "page"`, []string{"page"}, false},
		{`_type == "post" && _type == "page"`, []string{}, false},
		{`_type == "post" || _type == "page"`, nil, false},
		{`!(_type == "post")`, nil, false},
		{`_type != "post"`, nil, false},
		{`_type in $types`, nil, false},
		{`_type in ["post", ...$more]`, nil, false},
		{`_type match "po*"`, nil, false},
		{`defined(author)`, nil, false},
		{`author == global::identity()`, nil, true},
		{`author.identity == "x"`, nil, false},
	}
	for _, tt := range tests {
		n, err := syntax.Parse(tt.filter)
		if err != nil {
			t.Fatalf("%s: %v", tt.filter, err)
		}
		types, ok := requiredTypes(n)
		if ok != (tt.types != nil) || !slices.Equal(types, tt.types) {
			t.Errorf("requiredTypes(%s) = %q, %v; want %q", tt.filter, types, ok, tt.types)
		}
		if got := callsIdentity(n); got != tt.usesIdentity {
			t.Errorf("callsIdentity(%s) = %v, want %v", tt.filter, got, tt.usesIdentity)
		}
	}
}

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
