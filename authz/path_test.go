package authz

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestPathMatch(t *testing.T) {
	tests := []struct {
		glob string
		id   string
		want bool
	}{
		{"*", "post-1", true},
		{"*", "drafts.post-1", false},
		{"*", "secret.config", false},
		{"*", "_.groups.x", false},
		{"**", "post-1", true},
		{"**", "drafts.post-1", true},
		{"**", "versions.r1.post-1", true},
		{"drafts.**", "drafts.post-1", true},
		{"drafts.**", "drafts.a.b", true},
		{"drafts.**", "drafts", false},
		{"drafts.**", "post-1", false},
		{"drafts.**", "draftsx.post-1", false},
		{"drafts.*", "drafts.post-1", true},
		{"drafts.*", "drafts.a.b", false},
		{"*.post-1", "drafts.post-1", true},
		{"*.post-1", "post-1", false},
		{"*.post-1", "versions.r1.post-1", false},
		{"**.post-1", "versions.r1.post-1", true},
		{"**.post-1", "drafts.post-1", true},
		{"**.post-1", "post-1", false},
		{"**.post-1", "xpost-1", false},
		{"versions.*.**", "versions.r1.post-1", true},
		{"versions.*.**", "versions.r1", false},
		{"a.**.b", "a.x.b", true},
		{"a.**.b", "a.x.y.b", true},
		{"a.**.b", "a.b", false},
		{"post-1", "post-1", true},
		{"post-1", "post-10", false},
		{"post-1", "drafts.post-1", false},
		{"_.groups.**", "_.groups.authors", true},
		{"*", "", false},
		{"**", "", false},
	}
	for _, tt := range tests {
		p, err := ParsePath(tt.glob)
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", tt.glob, err)
		}
		if got := p.Match(tt.id); got != tt.want {
			t.Errorf("path %q matching %q = %v, want %v", tt.glob, tt.id, got, tt.want)
		}
	}
}

func TestParsePathErrors(t *testing.T) {
	tests := []struct{ glob, want string }{
		{"", "it is empty"},
		{"a..b", "part 2 is empty"},
		{".a", "part 1 is empty"},
		{"a.", "part 2 is empty"},
		{"post-*", `the wildcard in part "post-*" must be a whole part`},
		{"***", `the wildcard in part "***" must be a whole part`},
		{"a b", `part "a b" contains ' '`},
		{"a/b", `part "a/b" contains '/'`},
		{strings.Repeat("a", 257), "longer than 256"},
	}
	for _, tt := range tests {
		_, err := ParsePath(tt.glob)
		e, ok := err.(*Error)
		if !ok || e.Code != CodeInvalidGroup || !strings.Contains(e.Description, tt.want) {
			t.Errorf("ParsePath(%q) = %v, want invalidGroup containing %q", tt.glob, err, tt.want)
		}
	}
}

// pathRegexp is the definition of path globs in groq-js (Path.ts): each
// dot-separated part is "[^.]+" for *, ".*" for **, and itself otherwise,
// the parts joined by a dot. (groq-js joins them with an unescaped ".",
// which matches any character: a bug this definition does not copy.)
func pathRegexp(glob string) *regexp.Regexp {
	var parts []string
	for _, p := range strings.Split(glob, ".") {
		switch p {
		case "*":
			parts = append(parts, "[^.]+")
		case "**":
			parts = append(parts, ".*")
		default:
			parts = append(parts, regexp.QuoteMeta(p))
		}
	}
	return regexp.MustCompile(`^` + strings.Join(parts, `\.`) + `$`)
}

// TestPathMatchesGroqJS compares Match with groq-js's regular expression on
// random globs and ids.
func TestPathMatchesGroqJS(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	segs := []string{"a", "b", "drafts", "versions", "x1"}
	randomParts := func(n int, wild bool) []string {
		out := make([]string, n)
		for i := range out {
			switch k := r.IntN(5); {
			case wild && k == 0:
				out[i] = "*"
			case wild && k == 1:
				out[i] = "**"
			default:
				out[i] = segs[r.IntN(len(segs))]
			}
		}
		return out
	}
	for range 20000 {
		glob := strings.Join(randomParts(1+r.IntN(4), true), ".")
		id := strings.Join(randomParts(1+r.IntN(5), false), ".")
		p, err := ParsePath(glob)
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", glob, err)
		}
		if got, want := p.Match(id), pathRegexp(glob).MatchString(id); got != want {
			t.Fatalf("path %q matching %q = %v, groq-js says %v", glob, id, got, want)
		}
	}
}
