package jsondiff

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func mustJSON(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return v
}

func marshal(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// roundTrip checks Apply∘Diff, Revert∘Diff, the JSON form and that the
// inputs are left untouched, and returns the patch JSON.
func roundTrip(t testing.TB, a, b any) string {
	t.Helper()
	aJSON, bJSON := marshal(t, a), marshal(t, b)
	p := Diff(a, b)
	pj, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("marshal patch: %v", err)
	}
	var q Patch
	if err := json.Unmarshal(pj, &q); err != nil {
		t.Fatalf("unmarshal patch %s: %v", pj, err)
	}
	if again := marshal(t, q); again != string(pj) {
		t.Fatalf("patch JSON does not round-trip:\n%s\n%s", pj, again)
	}
	for _, patch := range []Patch{p, q} {
		got, err := patch.Apply(a)
		if err != nil {
			t.Fatalf("Apply(%s) with %s: %v", aJSON, pj, err)
		}
		if g := marshal(t, got); g != bJSON {
			t.Fatalf("Apply(%s) with %s = %s, want %s", aJSON, pj, g, bJSON)
		}
		back, err := patch.Revert(b)
		if err != nil {
			t.Fatalf("Revert(%s) with %s: %v", bJSON, pj, err)
		}
		if g := marshal(t, back); g != aJSON {
			t.Fatalf("Revert(%s) with %s = %s, want %s", bJSON, pj, g, aJSON)
		}
	}
	if marshal(t, a) != aJSON || marshal(t, b) != bJSON {
		t.Fatalf("inputs were modified")
	}
	if again := marshal(t, Diff(a, b)); again != string(pj) {
		t.Fatalf("Diff is not deterministic: %s vs %s", pj, again)
	}
	return string(pj)
}

func TestDiff(t *testing.T) {
	long := strings.Repeat("abcdefghij", 10)
	tests := []struct {
		name, a, b, patch string
	}{
		{"equal", `{"a":1}`, `{"a":1}`, `null`},
		{"scalar", `1`, `2`, `["s",1,2]`},
		{"type change", `{"a":1}`, `[1]`, `["s",{"a":1},[1]]`},
		{"null to value", `null`, `"x"`, `["s",null,"x"]`},
		{"negative zero differs", `0`, `-0`, `["s",0,-0]`},
		{"member added", `{"a":1}`, `{"a":1,"b":2}`, `["o",{"b":["+",2]}]`},
		{"member removed", `{"a":1,"b":2}`, `{"a":1}`, `["o",{"b":["-",2]}]`},
		{"member changed", `{"a":1,"b":2}`, `{"a":1,"b":3}`, `["o",{"b":["s",2,3]}]`},
		{"nested", `{"a":{"b":{"c":1,"d":2}}}`, `{"a":{"b":{"c":1,"d":5}}}`, `["o",{"a":["o",{"b":["o",{"d":["s",2,5]}]}]}]`},
		{"members in key order", `{"z":1,"a":1}`, `{"z":2,"a":2}`, `["o",{"a":["s",1,2],"z":["s",1,2]}]`},
		{"array append", `[1,2,3]`, `[1,2,3,4]`, `["a",[3,[],[4]]]`},
		{"array insert middle", `[1,2,3]`, `[1,9,2,3]`, `["a",[1,[],[9]]]`},
		{"array remove", `[1,2,3]`, `[1,3]`, `["a",[1,[2],[]]]`},
		{"array same length edits", `[1,{"x":1},3]`, `[1,{"x":2},3]`, `["a",[1,["o",{"x":["s",1,2]}]]]`},
		{"array replace middle", `[1,2,3,4]`, `[1,7,8,9,4]`, `["a",[1,[2,3],[7,8,9]]]`},
		{"array emptied", `[1,2]`, `[]`, `["a",[0,[1,2],[]]]`},
		{"keyed edit", `[{"_key":"a","v":1},{"_key":"b","v":1}]`, `[{"_key":"a","v":1},{"_key":"b","v":2}]`, `["a",[1,["o",{"v":["s",1,2]}]]]`},
		{"keyed insert front", `[{"_key":"a"},{"_key":"b"}]`, `[{"_key":"c"},{"_key":"a"},{"_key":"b"}]`, `["a",[0,[],[{"_key":"c"}]]]`},
		{"keyed move", `[{"_key":"a"},{"_key":"b"},{"_key":"c"}]`, `[{"_key":"b"},{"_key":"c"},{"_key":"a"}]`, `["a",[0,[{"_key":"a"}],[]],[3,[],[{"_key":"a"}]]]`},
		{"keyed edit and insert", `[{"_key":"a","v":1},{"_key":"b","v":1}]`, `[{"_key":"a","v":2},{"_key":"n"},{"_key":"b","v":1}]`, `["a",[0,["o",{"v":["s",1,2]}]],[1,[],[{"_key":"n"}]]]`},
		{"unkeyed edit and insert", `[{"a":1},{"b":1},{"c":1},{"d":1}]`, `[{"a":2},{"b":1},{"x":0},{"c":1},{"d":1}]`, `["a",[0,["o",{"a":["s",1,2]}]],[2,[],[{"x":0}]]]`},
		{"unkeyed remove and edit", `[1,2,3,{"v":1},5]`, `[9,3,{"v":2},5]`, `["a",[0,[1,2],[9]],[3,["o",{"v":["s",1,2]}]]]`},
		{"short strings replaced", `"abc"`, `"abd"`, `["s","abc","abd"]`},
		{"long string spliced", `"` + long + `"`, `"` + long[:50] + "XYZ" + long[50:] + `"`, `["t",50,"","XYZ"]`},
		{"long string utf8", `"` + long + `é"`, `"` + long + `è"`, `["t",100,"é","è"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := mustJSON(t, tt.a), mustJSON(t, tt.b)
			if got := roundTrip(t, a, b); got != tt.patch {
				t.Errorf("Diff(%s, %s) = %s, want %s", tt.a, tt.b, got, tt.patch)
			}
		})
	}
}

func TestApplyMismatch(t *testing.T) {
	tests := []struct {
		name, patch, base, path, contains string
	}{
		{"wrong scalar", `["s",1,2]`, `3`, "", "expected 1, found 3"},
		{"not an object", `["o",{"a":["s",1,2]}]`, `[1]`, "", "expected an object"},
		{"missing member", `["o",{"a":["s",1,2]}]`, `{"b":1}`, "/a", "expected a member"},
		{"member already there", `["o",{"a":["+",2]}]`, `{"a":1}`, "/a", "expected no member"},
		{"removed member absent", `["o",{"a":["-",2]}]`, `{}`, "/a", "found no member"},
		{"removed member differs", `["o",{"a":["-",2]}]`, `{"a":3}`, "/a", "expected 2, found 3"},
		{"nested path escaped", `["o",{"a/b":["o",{"c~":["s",1,2]}]}]`, `{"a/b":{"c~":5}}`, "/a~1b/c~0", "expected 1"},
		{"array too short", `["a",[5,[],[1]]]`, `[1,2]`, "", "index 5"},
		{"array edit past end", `["a",[2,["s",1,2]]]`, `[1,2]`, "", "index 2"},
		{"array removal differs", `["a",[0,[1],[]]]`, `[2]`, "/0", "expected 1, found 2"},
		{"array removal too long", `["a",[1,[1,2],[]]]`, `[0,1]`, "", "removal of 2"},
		{"text differs", `["t",2,"cd","x"]`, `"abXd"`, "", "expected \"cd\""},
		{"text too short", `["t",2,"cd","x"]`, `"ab"`, "", "byte 2"},
		{"text on number", `["t",0,"a","b"]`, `1`, "", "expected a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Patch
			if err := json.Unmarshal([]byte(tt.patch), &p); err != nil {
				t.Fatal(err)
			}
			base := mustJSON(t, tt.base)
			before := marshal(t, base)
			v, err := p.Apply(base)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Apply = %v, %v; want *Error", v, err)
			}
			if e.Code != CodePatchMismatch || e.Path != tt.path || !strings.Contains(e.Description, tt.contains) {
				t.Errorf("error = %+v; want code %s path %q containing %q", e, CodePatchMismatch, tt.path, tt.contains)
			}
			if marshal(t, base) != before {
				t.Errorf("base modified")
			}
		})
	}
}

func TestUnmarshalMalformed(t *testing.T) {
	for _, s := range []string{
		`{`, `1`, `[]`, `[1]`, `["x"]`, `["s",1]`, `["+",1]`, `["-",1]`,
		`["o",[]]`, `["o",{"a":1}]`, `["t",-1,"a","b"]`, `["t",1.5,"a","b"]`, `["t",0,1,"b"]`,
		`["a",1]`, `["a",[0]]`, `["a",[0,1,[]]]`, `["a",[2,["s",1,2]],[1,["s",1,2]]]`,
		`["a",[0,[1,2],[]],[1,[],[3]]]`, `["a",[0,["+",1]]]`, `["ss",1,2]`,
	} {
		var p Patch
		err := p.UnmarshalJSON([]byte(s))
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeMalformedPatch {
			t.Errorf("Unmarshal(%s) = %v; want a malformedPatch *Error", s, err)
		}
	}
}

func TestEmptyPatch(t *testing.T) {
	var p Patch
	if !p.IsEmpty() {
		t.Fatal("zero patch is not empty")
	}
	v, err := p.Apply(mustJSON(t, `{"a":1}`))
	if err != nil || marshal(t, v) != `{"a":1}` {
		t.Fatalf("Apply = %v, %v", v, err)
	}
	if b, _ := json.Marshal(p); string(b) != "null" {
		t.Fatalf("marshal = %s", b)
	}
}

// randomValue builds a random JSON value of limited depth. Strings, keys and
// array elements come from small alphabets so that random pairs share
// structure.
func randomValue(r *rand.Rand, depth int) any {
	k := r.IntN(10)
	if depth <= 0 {
		k = r.IntN(6)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return float64(r.IntN(5))
	case 3:
		return []float64{-0.0, 1.5, -2e300, 1e-7}[r.IntN(4)] * float64(r.IntN(2)*2-1)
	case 4:
		return randomString(r)
	case 5:
		return []string{"a", "b", "é", "日本"}[r.IntN(4)]
	case 6, 7:
		m := map[string]any{}
		for i := r.IntN(5); i > 0; i-- {
			m[[]string{"a", "b", "c", "_key", "d/e"}[r.IntN(5)]] = randomValue(r, depth-1)
		}
		return m
	case 8:
		xs := make([]any, r.IntN(6))
		for i := range xs {
			xs[i] = randomValue(r, depth-1)
		}
		return xs
	default: // keyed array
		xs := make([]any, r.IntN(6))
		for i := range xs {
			xs[i] = map[string]any{"_key": fmt.Sprint("k", r.IntN(8)), "v": randomValue(r, depth-1)}
		}
		return xs
	}
}

func randomString(r *rand.Rand) string {
	base := strings.Repeat("lorem ipsum é 日本 ", 5+r.IntN(3))
	var sb strings.Builder
	for _, c := range base {
		switch r.IntN(40) {
		case 0:
			continue
		case 1:
			sb.WriteRune('ø')
		}
		sb.WriteRune(c)
	}
	return sb.String()
}

// mutate returns a copy of v with a few random changes, so that pairs are
// related as real document versions are.
func mutate(r *rand.Rand, v any, depth int) any {
	if r.IntN(6) == 0 {
		return randomValue(r, depth)
	}
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			switch r.IntN(6) {
			case 0: // drop
			case 1:
				m[k] = mutate(r, e, depth-1)
			default:
				m[k] = e
			}
		}
		if r.IntN(3) == 0 {
			m[fmt.Sprint("n", r.IntN(3))] = randomValue(r, depth-1)
		}
		return m
	case []any:
		var out []any
		for _, e := range x {
			switch r.IntN(6) {
			case 0:
			case 1:
				out = append(out, mutate(r, e, depth-1))
			case 2:
				out = append(out, randomValue(r, depth-1), e)
			default:
				out = append(out, e)
			}
		}
		if out == nil {
			out = []any{}
		}
		return out
	case string:
		if r.IntN(2) == 0 {
			return randomString(r)
		}
	}
	return v
}

func TestProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for i := 0; i < n; i++ {
		a := randomValue(r, 4)
		var b any
		if i%3 == 0 {
			b = randomValue(r, 4)
		} else {
			b = mutate(r, a, 4)
		}
		roundTrip(t, a, b)
		// On an unrelated base a patch either fits or fails with an
		// *Error; it never panics.
		if _, err := Diff(a, b).Apply(randomValue(r, 4)); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodePatchMismatch {
				t.Fatalf("Apply on a wrong base: %v", err)
			}
		}
	}
}

// bigDocument returns a document of about 100 KB: an array of keyed blocks,
// an array of unkeyed numbers and some long strings.
func bigDocument() map[string]any {
	r := rand.New(rand.NewPCG(7, 7))
	var blocks []any
	for i := 0; i < 400; i++ {
		blocks = append(blocks, map[string]any{
			"_key":  fmt.Sprintf("b%04d", i),
			"_type": "block",
			"style": "normal",
			"children": []any{map[string]any{
				"_key": fmt.Sprintf("s%04d", i), "_type": "span",
				"text": strings.Repeat(string(rune('a'+r.IntN(26))), 150),
			}},
		})
	}
	var nums []any
	for i := 0; i < 2000; i++ {
		nums = append(nums, float64(r.IntN(100000)))
	}
	return map[string]any{"_id": "doc", "_type": "article", "body": blocks, "numbers": nums,
		"title": "A long article", "summary": strings.Repeat("summary ", 500)}
}

// smallChanges lists ~100-byte edits of the big document.
func smallChanges() map[string]func(doc map[string]any) {
	hundred := strings.Repeat("0123456789", 10)
	return map[string]func(map[string]any){
		"new member": func(d map[string]any) { d["note"] = hundred },
		"block text": func(d map[string]any) {
			blocks := append([]any(nil), d["body"].([]any)...)
			b := clone(blocks[200]).(map[string]any)
			b["children"].([]any)[0].(map[string]any)["text"] = hundred
			blocks[200] = b
			d["body"] = blocks
		},
		"insert block": func(d map[string]any) {
			blocks := d["body"].([]any)
			nb := append(append(append([]any{}, blocks[:100]...), map[string]any{"_key": "new", "_type": "block", "text": hundred[:60]}), blocks[100:]...)
			d["body"] = nb
		},
		"insert numbers": func(d map[string]any) {
			nums := d["numbers"].([]any)
			var ins []any
			for i := 0; i < 10; i++ {
				ins = append(ins, 123456789.0)
			}
			d["numbers"] = append(append(append([]any{}, nums[:1000]...), ins...), nums[1000:]...)
		},
		"edit and insert numbers": func(d map[string]any) {
			nums := append([]any(nil), d["numbers"].([]any)...)
			nums[500] = 42.0
			d["numbers"] = append(append(append([]any{}, nums[:1000]...), 7.0, 8.0), nums[1000:]...)
		},
		"edit long string": func(d map[string]any) {
			s := d["summary"].(string)
			d["summary"] = s[:2000] + hundred + s[2000:]
		},
	}
}

func clone(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func TestPatchSize(t *testing.T) {
	base := bigDocument()
	size := len(marshal(t, base))
	if size < 90_000 || size > 130_000 {
		t.Fatalf("test document is %d bytes, want about 100 KB", size)
	}
	for name, change := range smallChanges() {
		t.Run(name, func(t *testing.T) {
			doc := clone(base).(map[string]any)
			change(doc)
			pj := roundTrip(t, base, doc)
			t.Logf("document %d bytes, patch %d bytes", size, len(pj))
			// A ~100-byte change may carry both old and new text plus
			// the path: allow 400 bytes, a 250th of the document.
			if len(pj) > 400 {
				t.Errorf("patch is %d bytes: %s", len(pj), pj)
			}
		})
	}
}

func BenchmarkDiff(b *testing.B) {
	base := bigDocument()
	doc := clone(base).(map[string]any)
	smallChanges()["block text"](doc)
	size := len(marshal(b, base))
	b.Run("jsondiff", func(b *testing.B) {
		b.SetBytes(int64(size))
		for b.Loop() {
			Diff(base, doc)
		}
	})
	// Baseline: marshalling the new version, which the patch replaces in
	// the log.
	b.Run("baseline-marshal", func(b *testing.B) {
		b.SetBytes(int64(size))
		for b.Loop() {
			_, _ = json.Marshal(doc)
		}
	})
}

func BenchmarkApply(b *testing.B) {
	base := bigDocument()
	doc := clone(base).(map[string]any)
	smallChanges()["block text"](doc)
	p := Diff(base, doc)
	pj, _ := json.Marshal(p)
	baseJSON, _ := json.Marshal(base)
	b.Run("jsondiff", func(b *testing.B) {
		b.SetBytes(int64(len(baseJSON)))
		for b.Loop() {
			if _, err := p.Apply(base); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Replay as the log does it: decode the patch and apply it.
	b.Run("jsondiff-decode-apply", func(b *testing.B) {
		b.SetBytes(int64(len(baseJSON)))
		for b.Loop() {
			var q Patch
			if err := json.Unmarshal(pj, &q); err != nil {
				b.Fatal(err)
			}
			if _, err := q.Apply(base); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Baseline: decoding the whole new document, which is what replay
	// would do if the log stored documents instead of patches.
	docJSON, _ := json.Marshal(doc)
	b.Run("baseline-unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(baseJSON)))
		for b.Loop() {
			var v any
			if err := json.Unmarshal(docJSON, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
