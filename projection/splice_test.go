package projection

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vellum-db/vellum/projection/jsondiff"
)

// slowDiff applies diff the general way, as applyDiff does when spliceDiff
// declines.
func slowDiff(doc, diff []byte) ([]byte, error) {
	var d lazyDoc
	if err := d.init(doc); err != nil {
		return nil, err
	}
	if err := d.patch(diff); err != nil {
		return nil, err
	}
	return d.marshal()
}

func TestSpliceDiff(t *testing.T) {
	for _, tt := range []struct {
		name, doc, diff string
		splices         bool // spliceDiff handles it (else it must decline)
	}{
		{"replace", `{"_rev":"a","n":1,"t":"x"}`, `["o",{"_rev":["s","a","b"],"n":["s",1,2]}]`, true},
		{"add first, middle, last", `{"b":1,"d":2}`, `["o",{"a":["+",true],"c":["+",null],"e":["+","s"]}]`, true},
		{"remove", `{"a":1,"b":[1,{"x":"]"}],"c":3}`, `["o",{"a":["-",1],"c":["-",3]}]`, true},
		{"into empty", `{}`, `["o",{"a":["+",-1.5]}]`, true},
		{"nested values kept", `{"a":{"b":[1,2,{"c":"}"}]},"n":1,"z":"q\"}"}`, `["o",{"n":["s",1,2]}]`, true},
		{"escaped html value", `{"a":"x"}`, `["o",{"a":["s","x","\u003c\u0026\u003e"]}]`, true},
		{"unicode value", `{"a":"x"}`, `["o",{"a":["s","x","héllo"]}]`, true},
		{"big number", `{"a":1}`, `["o",{"a":["s",1,1e+21]}]`, true},
		{"nested change", `{"a":{"b":1}}`, `["o",{"a":["o",{"b":["s",1,2]}]}]`, false},
		{"object value", `{"a":1}`, `["o",{"a":["s",1,{"b":2}]}]`, false},
		{"text change", `{"a":"hello"}`, `["o",{"a":["t",0,"h","j"]}]`, false},
		{"old differs", `{"a":1}`, `["o",{"a":["s",2,3]}]`, false},
		{"add present", `{"a":1}`, `["o",{"a":["+",3]}]`, false},
		{"remove absent", `{"a":1}`, `["o",{"b":["-",3]}]`, false},
		{"replace absent", `{"a":1}`, `["o",{"b":["s",1,3]}]`, false},
		{"escaped key", `{"a\"b":1}`, `["o",{"a\"b":["s",1,2]}]`, false},
		{"non-canonical number", `{"a":1}`, `["o",{"a":["s",1,1.0]}]`, false},
		{"non-canonical string", `{"a":1}`, `["o",{"a":["s",1,"<"]}]`, false},
		{"whole replace", `{"a":1}`, `["s",{"a":1},{"b":2}]`, false},
		{"unsorted document", `{"b":1,"a":1}`, `["o",{"a":["s",1,2]}]`, false},
		{"spaced document", `{"a": 1}`, `["o",{"a":["s",1,2]}]`, false},
		{"bad brackets", `{"a":[1},"b":1}`, `["o",{"b":["s",1,2]}]`, false},
		{"trailing data", `{"a":1}x`, `["o",{"a":["s",1,2]}]`, false},
		{"truncated diff", `{"a":1}`, `["o",{"a":["s",1,2]}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := spliceDiff([]byte(tt.doc), []byte(tt.diff))
			if ok != tt.splices {
				t.Fatalf("spliceDiff ok = %v, want %v (result %s)", ok, tt.splices, got)
			}
			if !ok {
				return
			}
			want, err := slowDiff([]byte(tt.doc), []byte(tt.diff))
			if err != nil {
				t.Fatalf("the general path fails where spliceDiff succeeded: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("spliceDiff = %s, the general path %s", got, want)
			}
		})
	}
}

// TestSpliceDiffRandom checks on random edits of random documents that
// spliceDiff, when it applies, gives exactly encoding/json's encoding of
// the edited document, and that it applies to the edits it is meant for.
func TestSpliceDiffRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	scalars := []any{nil, true, false, 0.0, -3.0, 1.5, 1e21, 123456789012345.0, "", "x", "a<b", "é", "\u2028", "tab\t"}
	spliced := 0
	for i := range 5000 {
		before := map[string]any{"_id": "d", "obj": map[string]any{"k": []any{1.0, "]"}}}
		for range rng.IntN(8) {
			before[fmt.Sprintf("m%d", rng.IntN(10))] = scalars[rng.IntN(len(scalars))]
		}
		after := map[string]any{}
		for k, v := range before {
			after[k] = v
		}
		for range 1 + rng.IntN(3) {
			k := fmt.Sprintf("m%d", rng.IntN(10))
			if rng.IntN(4) == 0 {
				delete(after, k)
			} else {
				after[k] = scalars[rng.IntN(len(scalars))]
			}
		}
		doc, _ := json.Marshal(before)
		diff, _ := json.Marshal(jsondiff.Diff(before, after))
		want, _ := json.Marshal(after)
		got, ok := spliceDiff(doc, diff)
		if !ok {
			continue
		}
		spliced++
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: doc %s diff %s: spliceDiff = %s, want %s", i, doc, diff, got, want)
		}
	}
	if spliced < 3000 {
		t.Fatalf("spliceDiff applied to only %d of 5000 scalar edits", spliced)
	}
}
