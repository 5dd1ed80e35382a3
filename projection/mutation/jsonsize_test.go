package mutation

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestJSONSize(t *testing.T) {
	values := []any{
		nil, true, false, 0.0, math.Copysign(0, -1), 1.0, -1.5, 1e20, 1e21, 123456789012345678901.0, 1e-6, 1e-7, 1.5e-7,
		-2e-300, 1.7976931348623157e308, 5e-324, 0.1, 100.0, 1e100,
		"", "plain", `quote " and \ backslash`, "\n\r\t\b\f\x00\x1f\x7f", "<a href='x'>&</a>", "é日本😀", "\u2028\u2029",
		"bad \xff\xfe utf8 \xe2\x82", []any{}, []any{1.0, "x", nil}, map[string]any{}, map[string]any{"<k>": []any{map[string]any{"a": true}}},
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		values = append(values, math.Float64frombits(r.Uint64()), r.NormFloat64()*math.Pow(10, float64(r.IntN(60)-30)))
		var sb strings.Builder
		for j := r.IntN(20); j > 0; j-- {
			sb.WriteByte(byte(r.IntN(256)))
		}
		values = append(values, sb.String())
	}
	for _, v := range values {
		b, err := json.Marshal(v)
		n, ok := jsonSize(v)
		if err != nil {
			if ok {
				t.Errorf("jsonSize(%#v) = %d, but json.Marshal fails: %v", v, n, err)
			}
			continue
		}
		if !ok || n != len(b) {
			t.Errorf("jsonSize(%#v) = %d, %v; json.Marshal gives %d bytes: %s", v, n, ok, len(b), b)
		}
	}
	if _, ok := jsonSize(map[string]any{"x": 1}); ok {
		t.Error("jsonSize accepted an int")
	}
}
