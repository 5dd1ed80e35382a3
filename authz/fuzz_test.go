package authz

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzPathMatch checks that ParsePath never panics and that Match agrees
// with the regular-expression definition for every glob it accepts.
func FuzzPathMatch(f *testing.F) {
	for _, s := range [][2]string{{"*", "post-1"}, {"**", "a.b"}, {"drafts.**", "drafts.x"}, {"a.**.b", "a.x.b"}, {"*.*", "a.b.c"}, {"post-*", "post-1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, glob, id string) {
		p, err := ParsePath(glob)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Code != CodeInvalidGroup {
				t.Fatalf("ParsePath(%q) error %v is not invalidGroup", glob, err)
			}
			return
		}
		if strings.ContainsAny(id, "\n\r\u2028\u2029") {
			// Never in a document id (a-zA-Z0-9._-); the regular
			// expression's "." would not cross a line end, Match's "**"
			// does, and neither answer is ever asked for.
			return
		}
		if got, want := p.Match(id), id != "" && pathRegexp(glob).MatchString(id); got != want {
			t.Fatalf("path %q matching %q = %v, want %v", glob, id, got, want)
		}
	})
}

// FuzzParseGroup checks that ParseGroup never panics on any JSON and that a
// group it accepts survives a round trip through Document.
func FuzzParseGroup(f *testing.F) {
	f.Add(`{"_id":"_.groups.a","_type":"system.group","members":["x"],"grants":[{"path":"*","permissions":["read"]}]}`)
	f.Add(`{"_id":"_.groups.a","_type":"system.group","grants":[{"filter":"_type == 'post' && author == identity()","permissions":["update","read"]}]}`)
	f.Add(`{"_id":"_.groups.a","_type":"system.group","grants":[{"filter":"*[0]","permissions":["read"]}]}`)
	f.Add(`{"_id":"_.groups.a","_type":"system.group","grants":[null, 3, {"path":null}]}`)
	f.Fuzz(func(t *testing.T, src string) {
		var doc map[string]any
		if json.Unmarshal([]byte(src), &doc) != nil {
			return
		}
		g, err := ParseGroup(doc)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("ParseGroup error %T %v is not an *Error", err, err)
			}
			return
		}
		back, err := json.Marshal(g.Document())
		if err != nil {
			t.Fatal(err)
		}
		var again map[string]any
		if err := json.Unmarshal(back, &again); err != nil {
			t.Fatal(err)
		}
		g2, err := ParseGroup(again)
		if err != nil {
			t.Fatalf("the document of an accepted group does not parse: %v\n%s", err, back)
		}
		if formatGroup(g) != formatGroup(g2) {
			t.Fatalf("round trip changed the group:\n%s\n%s", formatGroup(g), formatGroup(g2))
		}
	})
}
