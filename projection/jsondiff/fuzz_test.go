package jsondiff

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzApply feeds arbitrary patch JSON and values to UnmarshalJSON, Apply
// and Revert: they either work or return an *Error, never panic, and a
// patch that applies round-trips through Revert.
func FuzzApply(f *testing.F) {
	f.Add(`["o",{"a":["s",1,2]}]`, `{"a":1}`)
	f.Add(`["a",[1,[],[9]],[2,["s",3,4]]]`, `[1,2,3]`)
	f.Add(`["t",2,"cd","x"]`, `"abcdef"`)
	f.Add(`["o",{"b":["+",[1]],"c":["-",null]}]`, `{"c":null}`)
	f.Fuzz(func(t *testing.T, patch, value string) {
		var p Patch
		if err := p.UnmarshalJSON([]byte(patch)); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeMalformedPatch {
				t.Fatalf("UnmarshalJSON(%s): %v", patch, err)
			}
			return
		}
		var v any
		if json.Unmarshal([]byte(value), &v) != nil {
			return
		}
		before, _ := json.Marshal(v)
		out, err := p.Apply(v)
		if after, _ := json.Marshal(v); string(after) != string(before) {
			t.Fatalf("Apply modified its input")
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodePatchMismatch {
				t.Fatalf("Apply: %v", err)
			}
			return
		}
		back, err := p.Revert(out)
		if err != nil {
			t.Fatalf("patch %s applied to %s but does not revert: %v", patch, value, err)
		}
		if b, _ := json.Marshal(back); string(b) != string(before) {
			t.Fatalf("patch %s: %s → %v → %s", patch, before, out, b)
		}
	})
}
