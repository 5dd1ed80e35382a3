package groq

import (
	"math/rand/v2"
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

func TestRootAttributes(t *testing.T) {
	tests := []struct {
		filter string
		names  []string // nil: all of the document
	}{
		{`_type == "post"`, []string{"_type"}},
		{`@._type == "post" && @["title"] == "x"`, []string{"_type", "title"}},
		{`_type == "post" && author == identity()`, []string{"_type", "author"}},
		{`defined(meta.owner) || count(tags[@ == "x"]) > 0`, []string{"meta", "tags"}},
		{`tags[_key == "a"][0].v == 1`, []string{"tags"}},
		{`items[]{v}.v[0] == 2`, []string{"items"}},
		{`{"a": title, "b": _id}.a == "x"`, []string{"_id", "title"}},
		{`select(published => _type == "post", draft == true)`, []string{"_type", "draft", "published"}},
		{`string::startsWith(_id, "a.") && lower(title) match "x*"`, []string{"_id", "title"}},
		{`_id in path("drafts.**") && $t == _type`, []string{"_id", "_type"}},
		{`title[$k] == 1`, []string{"title"}},
		{`now() > publishedAt && dateTime(publishedAt) < dateTime::now()`, []string{"publishedAt"}},
		{`true`, []string{}},
		{`@ == null`, nil},
		{`count(@) > 0`, nil},
		{`references("a")`, nil},
		{`{...}.title == "x"`, nil},
		{`tags[@ == ^.title] != []`, nil},
		{`@[$k] == 1`, nil},
		{`author->name == "x"`, nil},
		{`sanity::versionOf("a")`, nil},
	}
	for _, tt := range tests {
		n, err := syntax.Parse(tt.filter)
		if err != nil {
			t.Fatalf("%s: %v", tt.filter, err)
		}
		names, all := RootAttributes(n)
		if all != (tt.names == nil) || !slices.Equal(names, tt.names) {
			t.Errorf("RootAttributes(%s) = %q, all %v; want %q", tt.filter, names, all, tt.names)
		}
	}
}

// TestRootAttributesAgree evaluates filters on generated documents and on
// the same documents cut down to the filter's root attributes: the two
// must always agree, which is what deciding on a partial decode relies on.
func TestRootAttributesAgree(t *testing.T) {
	filters := []string{
		`_type == "post"`,
		`_type == "post" && author == identity()`,
		`defined(meta.owner) || count(tags[@ == "x"]) > 0`,
		`tags[_key == "a"][0].v == 1 || tags[].v[1] > 2`,
		`(items[]{v}.v)[0] == 2`,
		`{"a": title, "b": _id}.a == "x"`,
		`select(defined(published) => _type == "post", draft == true)`,
		`string::startsWith(_id, "drafts.") && lower(title) match "t*"`,
		`_id in path("drafts.**") || $t == _type`,
		`coalesce(title, meta.title, "none") != "none" && length(title) > 1`,
		`array::unique(tags[].v) == tags[].v`,
		`math::sum(items[].v) > 3 && round(rank) == 2`,
		`!(_type in ["a", "post"]) && rank >= 1`,
		`meta{owner}.owner == identity()`,
	}
	r := rand.New(rand.NewPCG(1, 2))
	env := &Env{Identity: "u1", Params: map[string]any{"t": "post"}}
	for _, src := range filters {
		n, err := syntax.Parse(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		names, all := RootAttributes(n)
		if all {
			t.Fatalf("RootAttributes(%s) says it reads the whole document", src)
		}
		p, err := Compile(src, ModeFilter)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		trues := 0
		for range 2000 {
			doc := randomDoc(r)
			part := map[string]any{}
			for _, k := range names {
				if v, ok := doc[k]; ok {
					part[k] = v
				}
			}
			want, werr := p.Match(env, doc)
			got, gerr := p.Match(env, part)
			if want != got || (werr == nil) != (gerr == nil) {
				t.Fatalf("%s on %v: %v, %v on the whole document but %v, %v on %v", src, doc, want, werr, got, gerr, part)
			}
			if want {
				trues++
			}
		}
		if trues == 0 || trues == 2000 {
			t.Errorf("%s: the generated documents all give %v; the check shows nothing", src, trues > 0)
		}
	}
}

func randomDoc(r *rand.Rand) map[string]any {
	pick := func(xs ...any) any { return xs[r.IntN(len(xs))] }
	doc := map[string]any{"_id": pick("a", "drafts.a", "b.c"), "_type": pick("post", "page", "a")}
	maybe := func(k string, v func() any) {
		if r.IntN(3) > 0 {
			doc[k] = v()
		}
	}
	maybe("title", func() any { return pick("t", "Title", "x", 1.0, nil) })
	maybe("author", func() any { return pick("u1", "u2") })
	maybe("draft", func() any { return pick(true, false) })
	maybe("published", func() any { return pick("2026-01-01T00:00:00Z") })
	maybe("rank", func() any { return pick(1.0, 2.2, 1.6, "1") })
	maybe("meta", func() any {
		return map[string]any{"owner": pick("u1", "u2", nil), "title": pick("m", 2.0)}
	})
	maybe("tags", func() any {
		tags := []any{}
		for range r.IntN(4) {
			tags = append(tags, pick("x", "y", map[string]any{"_key": pick("a", "b"), "v": pick(1.0, 2.0, 3.0)}))
		}
		return tags
	})
	maybe("items", func() any {
		items := []any{}
		for range r.IntN(4) {
			items = append(items, map[string]any{"v": pick(1.0, 2.0, "v")})
		}
		return items
	})
	return doc
}
