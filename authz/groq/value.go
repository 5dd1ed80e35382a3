package groq

import (
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// The value model.
//
// Inside CEL a GROQ value is a ref.Val: types.Null, types.Bool, types.Double
// (every GROQ number), types.String, a traits.Lister (array) or a
// traits.Mapper (object), plus two opaque types of our own for GROQ's
// datetime and path values. Documents enter CEL lazily: a map[string]any is
// wrapped, not converted, and an attribute is converted only when it is
// read (see adapter). Values built by GROQ operators (objects, arrays) are
// built as Go JSON values and wrapped the same way.

// kind is the GROQ type of a value.
type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kArray
	kObject
	kDateTime
	kPath
)

var (
	dateTimeType = types.NewOpaqueType("groq.datetime")
	pathType     = types.NewOpaqueType("groq.path")
	refIndexType = types.NewOpaqueType("groq.refindex")
)

// dateTime is a GROQ datetime value (Go side).
type dateTime struct{ t time.Time }

// pathValue is a GROQ path value (Go side): the glob pattern.
type pathValue struct{ pattern string }

// dateTimeVal is a GROQ datetime inside CEL.
type dateTimeVal struct{ t time.Time }

func (d *dateTimeVal) ConvertToNative(t reflect.Type) (any, error) {
	return nil, errUnsupported
}
func (d *dateTimeVal) ConvertToType(t ref.Type) ref.Val { return types.NewErr("no conversion") }
func (d *dateTimeVal) Equal(o ref.Val) ref.Val {
	od, ok := o.(*dateTimeVal)
	return types.Bool(ok && od.t.Equal(d.t))
}
func (d *dateTimeVal) Type() ref.Type { return dateTimeType }
func (d *dateTimeVal) Value() any     { return dateTime{d.t} }

// pathVal is a GROQ path inside CEL.
type pathVal struct{ pattern string }

func (p *pathVal) ConvertToNative(t reflect.Type) (any, error) { return nil, errUnsupported }
func (p *pathVal) ConvertToType(t ref.Type) ref.Val            { return types.NewErr("no conversion") }
func (p *pathVal) Equal(o ref.Val) ref.Val {
	op, ok := o.(*pathVal)
	return types.Bool(ok && op.pattern == p.pattern)
}
func (p *pathVal) Type() ref.Type { return pathType }
func (p *pathVal) Value() any     { return pathValue{p.pattern} }

type unsupportedError struct{}

func (unsupportedError) Error() string { return "groq: conversion not supported" }

var errUnsupported error = unsupportedError{}

// adapter converts Go JSON values to CEL values lazily.
type adapter struct{}

var theAdapter = adapter{}

func (adapter) NativeToValue(v any) ref.Val {
	switch v.(type) {
	case string:
		return boxString(v)
	case float64:
		return boxDouble(v)
	}
	switch v := v.(type) {
	case nil:
		return types.NullValue
	case ref.Val:
		return v
	case bool:
		return types.Bool(v)
	case float64:
		return types.Double(v)
	case string:
		return types.String(v)
	case map[string]any:
		return &objVal{v}
	case []any:
		return types.NewDynamicList(theAdapter, v)
	case dateTime:
		return &dateTimeVal{v.t}
	case pathValue:
		return &pathVal{v.pattern}
	case int:
		return types.Double(float64(v))
	case int64:
		return types.Double(float64(v))
	case float32:
		return types.Double(float64(v))
	case []map[string]any:
		out := make([]any, len(v))
		for i, m := range v {
			out[i] = m
		}
		return types.NewDynamicList(theAdapter, out)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// kindOf classifies a CEL value as a GROQ type. Anything unknown is null.
func kindOf(v ref.Val) kind {
	switch v.(type) {
	case types.Null:
		return kNull
	case types.Bool:
		return kBool
	case types.Double, types.Int, types.Uint:
		return kNumber
	case types.String:
		return kString
	case *dateTimeVal:
		return kDateTime
	case *pathVal:
		return kPath
	case traits.Lister:
		return kArray
	case traits.Mapper:
		return kObject
	}
	return kNull
}

func num(v ref.Val) (float64, bool) {
	switch v := v.(type) {
	case types.Double:
		return float64(v), true
	case types.Int:
		return float64(v), true
	case types.Uint:
		return float64(v), true
	}
	return 0, false
}

// numVal returns a GROQ number; non-finite results are null, as in GROQ.
func numVal(f float64) ref.Val {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return types.NullValue
	}
	return types.Double(f)
}

// goMap returns the Go map behind an object value, converting CEL-built
// maps when needed.
func goMap(v ref.Val) (map[string]any, bool) {
	m, ok := v.(traits.Mapper)
	if !ok {
		return nil, false
	}
	if raw, ok := m.Value().(map[string]any); ok {
		return raw, true
	}
	out := map[string]any{}
	it := m.Iterator()
	for it.HasNext() == types.True {
		k := it.Next()
		ks, ok := k.(types.String)
		if !ok {
			continue
		}
		out[string(ks)] = toGo(m.Get(k))
	}
	return out, true
}

// listLen and listEach walk an array value without converting it.
func listEach(v ref.Val, f func(ref.Val) bool) bool {
	l, ok := v.(traits.Lister)
	if !ok {
		return false
	}
	switch raw := l.Value().(type) {
	case []any:
		for _, e := range raw {
			if !f(theAdapter.NativeToValue(e)) {
				break
			}
		}
		return true
	case []ref.Val:
		for _, e := range raw {
			if !f(e) {
				break
			}
		}
		return true
	}
	it := l.Iterator()
	for it.HasNext() == types.True {
		if !f(it.Next()) {
			break
		}
	}
	return true
}

func listLen(v ref.Val) int {
	l := v.(traits.Lister)
	switch raw := l.Value().(type) {
	case []any:
		return len(raw)
	case []ref.Val:
		return len(raw)
	}
	n, _ := l.Size().(types.Int)
	return int(n)
}

// goList returns the Go slice behind an array value (not copied when it is
// already one).
func goList(v ref.Val) ([]any, bool) {
	l, ok := v.(traits.Lister)
	if !ok {
		return nil, false
	}
	if raw, ok := l.Value().([]any); ok {
		return raw, true
	}
	out := make([]any, 0, listLen(v))
	listEach(v, func(e ref.Val) bool {
		out = append(out, toGo(e))
		return true
	})
	return out, true
}

// toGo converts a CEL value to the Go value model (JSON values plus
// dateTime and pathValue).
func toGo(v ref.Val) any {
	switch v := v.(type) {
	case types.Null:
		return nil
	case types.Bool:
		return bool(v)
	case types.Double:
		return float64(v)
	case types.Int:
		return float64(v)
	case types.Uint:
		return float64(v)
	case types.String:
		return string(v)
	case *dateTimeVal:
		return dateTime{v.t}
	case *pathVal:
		return pathValue{v.pattern}
	case traits.Lister:
		l, _ := goList(v)
		return l
	case traits.Mapper:
		m, _ := goMap(v)
		return m
	}
	return nil
}

// toJSON converts a CEL value to a plain JSON value (encoding/json model):
// datetimes become their RFC 3339 string and paths their pattern.
func toJSON(v ref.Val) any { return jsonValue(toGo(v)) }

func jsonValue(v any) any {
	switch v := v.(type) {
	case dateTime:
		return formatDateTime(v.t)
	case pathValue:
		return v.pattern
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil
		}
		return v
	case []any:
		var out []any
		for i, e := range v {
			j := jsonValue(e)
			if out == nil && !sameJSON(j, e) {
				out = make([]any, len(v))
				copy(out, v[:i])
			}
			if out != nil {
				out[i] = j
			}
		}
		if out == nil {
			return v
		}
		return out
	case map[string]any:
		var out map[string]any
		for k, e := range v {
			j := jsonValue(e)
			if out == nil && !sameJSON(j, e) {
				out = make(map[string]any, len(v))
				for k2, e2 := range v {
					out[k2] = e2
				}
			}
			if out != nil {
				out[k] = j
			}
		}
		if out == nil {
			return v
		}
		return out
	}
	return v
}

// sameJSON reports whether jsonValue left e unchanged (cheap identity check).
func sameJSON(j, e any) bool {
	switch e.(type) {
	case dateTime, pathValue:
		return false
	case float64:
		f := e.(float64)
		return !(math.IsInf(f, 0) || math.IsNaN(f))
	case []any:
		a, ok := j.([]any)
		b := e.([]any)
		return ok && len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
	case map[string]any:
		a, ok := j.(map[string]any)
		return ok && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(e).UnsafePointer()
	}
	return true
}

// ---- equality and ordering ----

// equal is GROQ's ==: values of the same scalar type with the same value.
// Arrays and objects are never equal.
func equal(a, b ref.Val) bool {
	switch a := a.(type) {
	case types.Null:
		_, ok := b.(types.Null)
		return ok
	case types.Bool:
		bb, ok := b.(types.Bool)
		return ok && a == bb
	case types.String:
		bs, ok := b.(types.String)
		return ok && a == bs
	case *dateTimeVal:
		bd, ok := b.(*dateTimeVal)
		return ok && a.t.Equal(bd.t)
	}
	if x, ok := num(a); ok {
		y, ok := num(b)
		return ok && x == y
	}
	return false
}

// compareStrings orders strings as JavaScript does (UTF-16 code units).
func compareStrings(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i] < 0x80 && b[i] < 0x80 {
				return int(a[i]) - int(b[i])
			}
			// Differing non-ASCII: compare the rest, from the start of
			// the rune, by UTF-16 units.
			for i > 0 && !utf8.RuneStart(a[i]) {
				i--
			}
			ua := utf16.Encode([]rune(a[i:]))
			ub := utf16.Encode([]rune(b[i:]))
			for j := 0; j < len(ua) && j < len(ub); j++ {
				if ua[j] != ub[j] {
					return int(ua[j]) - int(ub[j])
				}
			}
			return len(ua) - len(ub)
		}
	}
	return len(a) - len(b)
}

// partialCompare is GROQ's ordering for < <= > >=: numbers, strings,
// booleans and datetimes of the same type; ok is false otherwise.
func partialCompare(a, b ref.Val) (int, bool) {
	ka, kb := kindOf(a), kindOf(b)
	if ka != kb {
		// Different types (a datetime and a string included) do not compare.
		return 0, false
	}
	switch ka {
	case kNumber:
		x, _ := num(a)
		y, _ := num(b)
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		case x == y:
			return 0, true
		}
		return 0, false
	case kString:
		c := compareStrings(string(a.(types.String)), string(b.(types.String)))
		switch {
		case c < 0:
			return -1, true
		case c > 0:
			return 1, true
		}
		return 0, true
	case kBool:
		x, y := bool(a.(types.Bool)), bool(b.(types.Bool))
		switch {
		case x == y:
			return 0, true
		case !x:
			return -1, true
		}
		return 1, true
	case kDateTime:
		return a.(*dateTimeVal).t.Compare(b.(*dateTimeVal).t), true
	}
	return 0, false
}

func typeOrder(k kind) int {
	switch k {
	case kDateTime:
		return 1
	case kNumber:
		return 2
	case kString:
		return 3
	case kBool:
		return 4
	}
	return 100
}

// totalCompare is the order used by order(): datetimes, numbers, strings,
// booleans, then everything else (equal among themselves).
func totalCompare(a, b ref.Val) int {
	oa, ob := typeOrder(kindOf(a)), typeOrder(kindOf(b))
	if oa != ob {
		return oa - ob
	}
	c, ok := partialCompare(a, b)
	if !ok {
		return 0
	}
	return c
}

// ---- datetimes ----

func parseDateTime(s string) (time.Time, bool) {
	// RFC 3339 with a mandatory time zone; fractional seconds optional.
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// formatDateTime formats as JavaScript's toISOString does for GROQ:
// UTC, milliseconds only when not zero.
func formatDateTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1e6 != 0 {
		return t.Format("2006-01-02T15:04:05.000Z")
	}
	return t.Format("2006-01-02T15:04:05Z")
}

// ---- numbers as JavaScript prints them ----

// formatNumber formats f as JavaScript's Number.prototype.toString does.
func formatNumber(f float64) string {
	if f == 0 {
		return "0"
	}
	if math.IsNaN(f) {
		return "NaN"
	}
	if math.IsInf(f, 1) {
		return "Infinity"
	}
	if math.IsInf(f, -1) {
		return "-Infinity"
	}
	sign := ""
	if f < 0 {
		sign = "-"
		f = -f
	}
	// Shortest round-trip digits and exponent.
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expStr, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, _ := strconv.Atoi(expStr)
	n := exp + 1 // position of the decimal point relative to digits
	k := len(digits)
	switch {
	case k <= n && n <= 21:
		return sign + digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		return sign + digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		return sign + "0." + strings.Repeat("0", -n) + digits
	}
	es := "+"
	if n-1 < 0 {
		es = "-"
	}
	ev := n - 1
	if ev < 0 {
		ev = -ev
	}
	if k == 1 {
		return sign + digits + "e" + es + strconv.Itoa(ev)
	}
	return sign + digits[:1] + "." + digits[1:] + "e" + es + strconv.Itoa(ev)
}

// roundHalfAwayFromZero rounds f to prec decimals the way groq-js does
// (Number(f.toFixed(prec)) for prec > 0).
func roundTo(f float64, prec int) float64 {
	if prec == 0 {
		if f < 0 {
			return -math.Floor(-f + 0.5)
		}
		return math.Floor(f + 0.5)
	}
	if prec > 100 || math.Abs(f) >= 1e21 {
		return f
	}
	// toFixed: the exact decimal expansion rounded half up (in magnitude).
	exact := new(big.Float).SetFloat64(math.Abs(f)).Text('f', 1100)
	intPart, frac, _ := strings.Cut(exact, ".")
	for len(frac) < prec+1 {
		frac += "0"
	}
	keep := intPart + frac[:prec]
	rest := frac[prec:]
	d := []byte(keep)
	if rest[0] >= '5' {
		i := len(d) - 1
		for ; i >= 0; i-- {
			if d[i] == '9' {
				d[i] = '0'
				continue
			}
			d[i]++
			break
		}
		if i < 0 {
			d = append([]byte{'1'}, d...)
		}
	}
	s := string(d[:len(d)-prec]) + "." + string(d[len(d)-prec:])
	r, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return f
	}
	if f < 0 {
		r = -r
	}
	return r
}

// ---- misc helpers ----

func sortStable(n int, less func(i, j int) bool, swap func(i, j int)) {
	sort.Stable(sorter{n, less, swap})
}

type sorter struct {
	n    int
	less func(i, j int) bool
	swap func(i, j int)
}

func (s sorter) Len() int           { return s.n }
func (s sorter) Less(i, j int) bool { return s.less(i, j) }
func (s sorter) Swap(i, j int)      { s.swap(i, j) }
