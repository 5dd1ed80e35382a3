package groq

import (
	"math/rand"
	"regexp"
	"strings"
	"testing"
)

// TestPathMatchProperty compares pathMatch (string fast path for literal
// patterns) with the regular expression groq-js builds for every pattern.
func TestPathMatchProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	segs := []string{"a", "b", "drafts", "*", "**", "x-y", ""}
	strs := []string{"a", "b", "drafts", "x-y", "", "ab"}
	for i := 0; i < 20000; i++ {
		var p, s []string
		for j := rng.Intn(4) + 1; j > 0; j-- {
			p = append(p, segs[rng.Intn(len(segs))])
		}
		for j := rng.Intn(5); j > 0; j-- {
			s = append(s, strs[rng.Intn(len(strs))])
		}
		pattern, subject := strings.Join(p, "."), strings.Join(s, ".")
		want := pathRegexp(pattern).MatchString(subject)
		if got := pathMatch(pattern, subject); got != want {
			t.Fatalf("pathMatch(%q, %q) = %v, regexp says %v", pattern, subject, got, want)
		}
	}
}

// TestTermMatch compares termMatch with the regular expression groq-js
// builds from a match term (^term$ with * as .*, case-insensitive).
func TestTermMatch(t *testing.T) {
	terms := []string{"groq", "gro*", "*oq", "g*q", "g.oq", "*", "GROQ*", "é*", "ÉCOLE", "a.b*"}
	tokens := []string{"groq", "GROQ", "groqs", "gr", "", "gxoq", "école", "ÉCOLES", "a.bc", "axbc"}
	for _, term := range terms {
		re := regexp.MustCompile("(?i)^" + strings.ReplaceAll(term, "*", ".*") + "$")
		for _, tok := range tokens {
			if got, want := termMatch(term, tok), re.MatchString(tok); got != want {
				t.Errorf("termMatch(%q, %q) = %v, want %v", term, tok, got, want)
			}
		}
	}
}

func TestTokenize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Hello world FOO-bar ding.dong A.B.C.s! посчастливится!", "Hello|world|FOO|bar|dingdong|ABCs|посчастливится"},
		{"...leading and trailing...", "leading|and|trailing"},
		{"a  \t b\nc", "a|b|c"},
		{"x*y", "x|y"},
	} {
		if got := strings.Join(tokenize(tc.in, false, nil), "|"); got != tc.want {
			t.Errorf("tokenize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := strings.Join(tokenize("x*y gro*", true, nil), "|"); got != "x*y|gro*" {
		t.Errorf("pattern tokens = %q", got)
	}
}

// TestFoldPrefix compares foldPrefix (ASCII fast path) with the rune-by-rune
// comparison under Unicode's simple case folding, on strings mixing ASCII
// letters, the ASCII characters one bit away from letters (@ [ ` {) and
// letters whose case folds cross ASCII (the Kelvin sign folds to k, ſ to s).
func TestFoldPrefix(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	alphabet := []string{"a", "A", "k", "K", "s", "S", "z", "Z", "@", "[", "`", "{", "0", "é", "É", "\u212a", "ſ", "ß"}
	str := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		return b.String()
	}
	agree, hits := 0, 0
	for range 200000 {
		s, p := str(rng.Intn(5)), str(rng.Intn(4))
		got, want := foldPrefix(s, p), foldPrefixRunes(s, p)
		if got != want {
			t.Fatalf("foldPrefix(%q, %q) = %v, rune by rune %v", s, p, got, want)
		}
		agree++
		if got {
			hits++
		}
	}
	if hits < agree/100 {
		t.Fatalf("only %d of %d prefixes match: the test does not exercise matches", hits, agree)
	}
}
