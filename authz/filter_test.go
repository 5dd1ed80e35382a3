package authz

import (
	"slices"
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

// TestReadAttributes checks what a grant set's read decisions need of a
// document: the attributes of its read filters (not of its other
// permissions' filters), with _id and _type, or the whole document.
func TestReadAttributes(t *testing.T) {
	grant := func(filter string, perms ...any) map[string]any {
		return map[string]any{"filter": filter, "permissions": perms}
	}
	policy, errs := LoadPolicy("blog", ACLPrivate, []map[string]any{
		{"_id": "_.groups.authors", "_type": GroupType, "members": []any{"ann"}, "grants": []any{
			grant("_type == 'post' && author == identity()", "read"),
			grant("editors[] match identity()", "update"),
		}},
		{"_id": "_.groups.tagged", "_type": GroupType, "members": []any{"ann", "tom"}, "grants": []any{
			grant("count(tags[@ == 'public']) > 0", "read"),
		}},
		{"_id": "_.groups.linked", "_type": GroupType, "members": []any{"lin"}, "grants": []any{
			grant("references('home')", "read"),
		}},
		{"_id": "_.groups.paths", "_type": GroupType, "members": []any{"pat"}, "grants": []any{
			map[string]any{"path": "public.**", "permissions": []any{"read"}},
		}},
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, tt := range []struct {
		user string
		want []string // nil: the whole document
	}{
		{"ann", []string{"_id", "_type", "author", "tags"}},
		{"tom", []string{"_id", "_type", "tags"}},
		{"lin", nil},
		{"pat", []string{"_id", "_type"}},
		{"nobody", []string{"_id", "_type"}},
	} {
		names, ok := policy.GrantSet(&Principal{ID: tt.user, Authenticated: true}).ReadAttributes()
		if ok != (tt.want != nil) || !slices.Equal(names, tt.want) {
			t.Errorf("%s: ReadAttributes() = %q, %v; want %q", tt.user, names, ok, tt.want)
		}
	}
}
