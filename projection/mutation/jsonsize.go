package mutation

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// jsonSize returns len(json.Marshal(v)) for a JSON value without building
// the encoding. ok is false for values encoding/json cannot encode (NaN,
// infinities, types outside the JSON model).
func jsonSize(v any) (n int, ok bool) {
	switch x := v.(type) {
	case nil:
		return 4, true
	case bool:
		if x {
			return 4, true
		}
		return 5, true
	case float64:
		return floatSize(x)
	case string:
		return stringSize(x), true
	case []any:
		n = 2 + max(len(x)-1, 0) // brackets and commas
		for _, e := range x {
			m, ok := jsonSize(e)
			if !ok {
				return 0, false
			}
			n += m
		}
		return n, true
	case map[string]any:
		n = 2 + max(len(x)-1, 0) // braces and commas
		for k, e := range x {
			m, ok := jsonSize(e)
			if !ok {
				return 0, false
			}
			n += stringSize(k) + 1 + m // key, colon, value
		}
		return n, true
	}
	return 0, false
}

// floatSize follows encoding/json's float64 encoding: the shortest
// representation, in exponent form below 1e-6 and from 1e21, with a
// one-digit negative exponent written without a leading zero.
func floatSize(f float64) (int, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	var buf [32]byte
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b := strconv.AppendFloat(buf[:0], f, format, -1, 64)
	n := len(b)
	if format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		n-- // e-07 is written e-7
	}
	return n, true
}

// stringSize follows encoding/json's string escaping (with HTML escaping,
// the default of json.Marshal).
func stringSize(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6 // \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
