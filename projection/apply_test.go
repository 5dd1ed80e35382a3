package projection

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vellum-db/vellum/projection/jsondiff"
)

// TestApplyDiffMatchesJSONDiff checks that applying a diff member by member
// (lazyDoc) gives exactly encoding/json's encoding of jsondiff's result, for
// member additions, removals, nested and text changes, whole replacements,
// and names and values that encoding/json escapes.
func TestApplyDiffMatchesJSONDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	value := func(depth int) any {
		var v func(int) any
		v = func(d int) any {
			switch k := rng.IntN(7); {
			case k == 0 || d > 2:
				return []any{"<b>&amp;</b>", "é\u2028", "plain text that is long enough to be diffed as a text splice, really"}[rng.IntN(3)]
			case k == 1:
				return float64(rng.IntN(100)) / 4
			case k == 2:
				return nil
			case k == 3:
				return rng.IntN(2) == 0
			case k == 4:
				xs := []any{}
				for range rng.IntN(4) {
					xs = append(xs, v(d+1))
				}
				return xs
			default:
				m := map[string]any{}
				for range rng.IntN(4) {
					m[fmt.Sprintf("k<%d>", rng.IntN(5))] = v(d + 1)
				}
				return m
			}
		}
		return v(depth)
	}
	doc := func() map[string]any {
		m := map[string]any{"_id": "x", "_type": "t"}
		for range rng.IntN(8) {
			m[[]string{"a", "b&c", "ü", "<tag>", "e", "f"}[rng.IntN(6)]] = value(0)
		}
		return m
	}
	for i := range 2000 {
		before, after := doc(), doc()
		if i%2 == 0 { // large enough to be split into members
			before["pad"] = strings.Repeat("x", lazyMinSize)
			after["pad"] = before["pad"]
		}
		if i%3 == 0 { // small edits of one member
			after = map[string]any{}
			for k, v := range before {
				after[k] = v
			}
			after["e"] = value(1)
			delete(after, "a")
		}
		patch := jsondiff.Diff(before, after)
		diff, err := json.Marshal(patch)
		if err != nil {
			t.Fatal(err)
		}
		prev, _ := json.Marshal(before)
		want, _ := json.Marshal(after)
		got, err := applyDiff(prev, diff)
		if err != nil {
			t.Fatalf("case %d: %v\nbefore %s\ndiff %s", i, err, prev, diff)
		}
		if string(got) != string(want) {
			t.Fatalf("case %d:\nbefore %s\ndiff   %s\ngot    %s\nwant   %s", i, prev, diff, got, want)
		}
	}
	// A diff that does not fit is an error, not a wrong document.
	for _, tt := range []struct{ doc, diff string }{
		{`{"a":1}`, `["o",{"a":["s",2,3]}]`},
		{`{"a":1}`, `["o",{"a":["+",2]}]`},
		{`{"a":1}`, `["o",{"b":["-",2]}]`},
		{`{"a":1}`, `["o",{"a":["-",2]}]`},
		{`{"a":1}`, `["o",{"b":["s",1,2]}]`},
		{`{"a":1}`, `["o",{"a":[]}]`},
		{`{"a":1}`, `["s",{"a":2},{}]`},
	} {
		pad := `,"pad":"` + strings.Repeat("x", lazyMinSize) + `"}`
		if got, err := applyDiff([]byte(tt.doc[:len(tt.doc)-1]+pad), []byte(tt.diff)); err == nil {
			t.Errorf("applyDiff(%s + pad, %s) = %.40s..., want an error", tt.doc, tt.diff, got)
		}
		if got, err := applyDiff([]byte(tt.doc), []byte(tt.diff)); err == nil {
			t.Errorf("applyDiff(%s, %s) = %s, want an error", tt.doc, tt.diff, got)
		}
	}
}
