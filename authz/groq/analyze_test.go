package groq

import (
	"slices"
	"testing"

	"github.com/vellum-db/vellum/authz/groq/syntax"
)

func TestAnalysis(t *testing.T) {
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
		types, ok := RequiredTypes(n)
		if ok != (tt.types != nil) || !slices.Equal(types, tt.types) {
			t.Errorf("RequiredTypes(%s) = %q, %v; want %q", tt.filter, types, ok, tt.types)
		}
		if got := CallsIdentity(n); got != tt.usesIdentity {
			t.Errorf("CallsIdentity(%s) = %v, want %v", tt.filter, got, tt.usesIdentity)
		}
	}
}
