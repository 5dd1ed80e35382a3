package projection

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestAppendJSON checks AppendJSON against json.Marshal on values chosen
// for encoding/json's special cases and on random documents.
func TestAppendJSON(t *testing.T) {
	strs := []string{"", "plain", `q"b\s`, "<a href='x'>&amp;</a>", "\x00\x01\b\f\n\r\t\x1f\x7f", "é😀", "\u2028\u2029",
		"bad\xffutf8\xc3", "\xed\xa0\x80", strings.Repeat("long text ", 50)}
	nums := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1.5, 123456789, 1e20, 1e21, 1e-6, 1e-7, 9.999999e-7, 1.7976931348623157e308, 5e-324, -2.5e-9, 12345678901234567890}
	values := []any{nil, true, false, []any{}, []any(nil), map[string]any{}, map[string]any(nil)}
	for _, s := range strs {
		values = append(values, s, map[string]any{s: s})
	}
	for _, f := range nums {
		values = append(values, f)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var random func(depth int) any
	random = func(depth int) any {
		switch k := rng.IntN(7); {
		case depth > 3 || k < 2:
			return strs[rng.IntN(len(strs))]
		case k == 2:
			return -nums[rng.IntN(len(nums))] / float64(1+rng.IntN(1000))
		case k == 3:
			return []any{random(depth + 1), nil, true}
		default:
			m := map[string]any{}
			for range rng.IntN(20) {
				m[strs[rng.IntN(len(strs))]+string(rune('a'+rng.IntN(26)))] = random(depth + 1)
			}
			return m
		}
	}
	for range 2000 {
		values = append(values, random(0))
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendJSON([]byte("prefix"), v)
		if err != nil || !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("AppendJSON(%#v) = %q, %v; json.Marshal gives %q", v, got, err, want)
		}
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), []any{math.Inf(-1)}} {
		if _, err := AppendJSON(nil, bad); err == nil {
			t.Errorf("AppendJSON(%v) succeeded; json.Marshal fails", bad)
		}
	}
	// Types JSON decoding does not produce are json.Marshal's.
	if got, err := AppendJSON(nil, map[string]any{"n": 3, "s": []string{"x"}}); err != nil || string(got) != `{"n":3,"s":["x"]}` {
		t.Errorf("AppendJSON of other types = %s, %v", got, err)
	}
}

// FuzzAppendJSON checks AppendJSON against json.Marshal on whatever JSON
// decodes to.
func FuzzAppendJSON(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.5e-9,"<\u2028>"],"b":{"":null},"c":"\xff"}`))
	f.Add([]byte(`[1e21,-0,0.000001,"\u0000"]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendJSON(nil, v)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON = %q, %v; json.Marshal gives %q", got, err, want)
		}
	})
}
