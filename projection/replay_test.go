package projection

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vellum-db/vellum/projection/jsondiff"
)

// randomMembers edits doc at random: members added, removed, replaced by
// scalars, objects or arrays, nested values changed, names that need
// escapes (which take the general path).
func randomMembers(rng *rand.Rand, doc map[string]any, escapes bool) map[string]any {
	out := make(map[string]any, len(doc)+2)
	for k, v := range doc {
		out[k] = v
	}
	for range 1 + rng.IntN(3) {
		name := fmt.Sprintf("m%02d", rng.IntN(40))
		switch rng.IntN(8) {
		case 0:
			delete(out, name)
		case 1:
			out[name] = map[string]any{"a": float64(rng.IntN(5)), "b": []any{"x", float64(rng.IntN(3))}}
		case 2:
			out[name] = []any{float64(rng.IntN(9)), "<&>", nil, true}
		case 3:
			if m, ok := out[name].(map[string]any); ok {
				c := map[string]any{}
				for k, v := range m {
					c[k] = v
				}
				c["a"] = float64(rng.IntN(100))
				out[name] = c
			}
		case 4:
			if escapes {
				out["é<"+name] = "escaped name"
			} else {
				out["é"+name] = float64(rng.IntN(7))
			}
		default:
			out[name] = fmt.Sprintf("text %d \u2028 %q", rng.IntN(1000), "q")
		}
	}
	return out
}

// TestMemberReplayMatchesLazyDoc replays chains of random diffs both ways
// and checks that memberReplay, when it applies, gives the same bytes as
// the general path and as encoding/json of the final document.
func TestMemberReplayMatchesLazyDoc(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	applied, fellBack := 0, 0
	for round := range 300 {
		doc := map[string]any{"_id": "d", "_type": "t"}
		for range 30 {
			doc = randomMembers(rng, doc, round%10 == 0)
		}
		base, _ := json.Marshal(doc)
		var diffs [][]byte
		cur := doc
		for range 1 + rng.IntN(20) {
			next := randomMembers(rng, cur, round%10 == 1)
			d, err := json.Marshal(jsondiff.Diff(cur, next))
			if err != nil {
				t.Fatal(err)
			}
			diffs = append(diffs, d)
			cur = next
		}
		want, _ := json.Marshal(cur)
		var ld lazyDoc
		if err := ld.init(base); err != nil {
			t.Fatal(err)
		}
		for _, d := range diffs {
			if err := ld.patch(d); err != nil {
				t.Fatalf("round %d: lazyDoc: %v", round, err)
			}
		}
		general, err := ld.marshal()
		if err != nil || string(general) != string(want) {
			t.Fatalf("round %d: the general path gives %s, want %s (%v)", round, general, want, err)
		}
		got, ok := memberReplay(base, diffs)
		if !ok {
			fellBack++
			continue
		}
		applied++
		if string(got) != string(want) {
			t.Fatalf("round %d: memberReplay gives\n%s\nwant\n%s", round, got, want)
		}
	}
	if applied < 100 {
		t.Errorf("memberReplay applied to %d chains only (%d fell back)", applied, fellBack)
	}
	t.Logf("memberReplay applied to %d chains, %d fell back", applied, fellBack)

	// Scalar changes are applied to the stored bytes (applyScalarChanges).
	for _, tt := range []struct{ base, diff, want string }{
		{`{"a":"x","b":1}`, `["o",{"a":["s","x","y"],"c":["+",true]}]`, `{"a":"y","b":1,"c":true}`},
		{`{"a":"x","b":1}`, `["o",{"b":["-",1]}]`, `{"a":"x"}`},
		{`{"b":1}`, `["o",{"a":["+",null]}]`, `{"a":null,"b":1}`},
		{`{"a":{"k":1},"b":1}`, `["o",{"b":["s",1,2.5]}]`, `{"a":{"k":1},"b":2.5}`},
	} {
		ms, _ := splitMembers([]byte(tt.base), nil)
		cs, ok := parseMemberChanges([]byte(tt.diff), nil)
		if !ok || !applyScalarChanges(&ms, cs) {
			t.Errorf("%s on %s: not applied as scalar changes", tt.diff, tt.base)
		}
		if got, ok := memberReplay([]byte(tt.base), [][]byte{[]byte(tt.diff)}); !ok || string(got) != tt.want {
			t.Errorf("memberReplay(%s, %s) = %s, %v; want %s", tt.base, tt.diff, got, ok, tt.want)
		}
	}

	// Diffs that do not fit, or are not member-wise, fall back.
	for _, tt := range []struct{ base, diff string }{
		{`{"a":1}`, `["o",{"a":["+",2]}]`},       // add an existing member
		{`{"a":1}`, `["o",{"b":["-",2]}]`},       // remove a missing one
		{`{"a":1}`, `["o",{"a":["-",3]}]`},       // remove a different value
		{`{"a":1}`, `["r",{"a":2}]`},             // not member-wise
		{`[1,2]`, `["o",{"a":["+",2]}]`},         // not an object
		{`{"b":1,"a":2}`, `["o",{"c":["+",2]}]`}, // not sorted
		{`{"a\u0041":1}`, `["o",{"c":["+",2]}]`}, // an escaped name
		{`{"a":1} `, `["o",{"c":["+",2]}]`},      // trailing space
		{`{"a":{"x":1}}`, `["o",{"a":["?",1]}]`}, // a malformed change
	} {
		if got, ok := memberReplay([]byte(tt.base), [][]byte{[]byte(tt.diff)}); ok {
			t.Errorf("memberReplay(%s, %s) = %s, want a fallback", tt.base, tt.diff, got)
		}
	}
}
