package groq

import (
	"math"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/decls"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// The CEL function library. Every GROQ operator and function is one CEL
// function over dyn values that implements GROQ's semantics (null for
// wrong types, three-valued logic, GROQ equality and ordering). The
// translator emits calls to these names; see translate.go.

type fnDef struct {
	name  string
	arity int
	ret   *cel.Type
	impl  any  // func(ref.Val) ref.Val, func(ref.Val, ref.Val) ref.Val or func(...ref.Val) ref.Val
	heavy bool // cost depends on argument sizes
}

var library = []fnDef{
	// truthiness and type tests used by the translation itself
	{name: "truth", arity: 1, ret: cel.BoolType, impl: func(v ref.Val) ref.Val { return types.Bool(v == types.True) }},
	{name: "isArray", arity: 1, ret: cel.BoolType, impl: func(v ref.Val) ref.Val { _, ok := v.(traits.Lister); return types.Bool(ok) }},
	{name: "isObject", arity: 1, ret: cel.BoolType, impl: func(v ref.Val) ref.Val { return types.Bool(kindOf(v) == kObject) }},

	// access
	{name: "get", arity: 2, impl: fnGet},
	{name: "elem", arity: 2, impl: fnElem},
	{name: "slice", arity: 4, impl: fnSlice, heavy: true},
	{name: "arrayOrNull", arity: 1, impl: func(v ref.Val) ref.Val {
		if kindOf(v) == kArray {
			return v
		}
		return types.NullValue
	}},
	{name: "flatten", arity: 1, impl: fnFlatten, heavy: true},
	{name: "deref", arity: 2, impl: fnDeref},
	{name: "attrCmp", arity: 2, impl: fnAttrCmp},
	{name: "attrMatch", arity: 2, impl: fnAttrMatch, heavy: true},
	{name: "object", arity: 2, impl: fnObject, heavy: true},
	{name: "array", arity: 2, impl: fnArray, heavy: true},
	{name: "cond", arity: 2, impl: func(c, v ref.Val) ref.Val {
		if c == types.True {
			return v
		}
		return types.NullValue
	}},
	{name: "order", arity: 2, impl: fnOrder, heavy: true},

	// logic and comparison
	{name: "and", arity: 2, impl: fnAnd},
	{name: "or", arity: 2, impl: fnOr},
	{name: "not", arity: 1, impl: func(v ref.Val) ref.Val {
		if b, ok := v.(types.Bool); ok {
			return !b
		}
		return types.NullValue
	}},
	{name: "eq", arity: 2, impl: func(a, b ref.Val) ref.Val { return types.Bool(equal(a, b)) }},
	{name: "neq", arity: 2, impl: func(a, b ref.Val) ref.Val { return types.Bool(!equal(a, b)) }},
	{name: "lt", arity: 2, impl: cmpOp(func(c int) bool { return c < 0 })},
	{name: "lte", arity: 2, impl: cmpOp(func(c int) bool { return c <= 0 })},
	{name: "gt", arity: 2, impl: cmpOp(func(c int) bool { return c > 0 })},
	{name: "gte", arity: 2, impl: cmpOp(func(c int) bool { return c >= 0 })},
	{name: "isIn", arity: 2, impl: fnIn, heavy: true},
	{name: "inRange", arity: 4, impl: fnInRange},
	{heavy: true, name: "inPath", arity: 2, impl: fnInPath},
	{name: "match", arity: 2, impl: fnMatch, heavy: true},

	// arithmetic
	{name: "add", arity: 2, impl: fnAdd, heavy: true},
	{name: "sub", arity: 2, impl: fnSub},
	{name: "mul", arity: 2, impl: numOp(func(a, b float64) float64 { return a * b })},
	{name: "div", arity: 2, impl: numOp(func(a, b float64) float64 { return a / b })},
	{name: "mod", arity: 2, impl: numOp(math.Mod)},
	{name: "pow", arity: 2, impl: numOp(jsPow)},
	{name: "neg", arity: 1, impl: func(v ref.Val) ref.Val {
		if f, ok := num(v); ok {
			return numVal(-f)
		}
		return types.NullValue
	}},
	{name: "pos", arity: 1, impl: func(v ref.Val) ref.Val {
		if f, ok := num(v); ok {
			return numVal(f)
		}
		return types.NullValue
	}},

	// global functions
	{name: "defined", arity: 1, impl: func(v ref.Val) ref.Val { return types.Bool(kindOf(v) != kNull) }},
	{name: "count", arity: 1, impl: func(v ref.Val) ref.Val {
		if kindOf(v) != kArray {
			return types.NullValue
		}
		return countVal(listLen(v))
	}},
	{heavy: true, name: "length", arity: 1, impl: func(v ref.Val) ref.Val {
		switch kindOf(v) {
		case kString:
			return types.Double(utf8.RuneCountInString(string(v.(types.String))))
		case kArray:
			return types.Double(listLen(v))
		}
		return types.NullValue
	}},
	{heavy: true, name: "lower", arity: 1, impl: strFn(lowerJS)},
	{heavy: true, name: "upper", arity: 1, impl: strFn(upperJS)},
	{heavy: true, name: "toString", arity: 1, impl: fnString},
	{name: "coalesce", arity: 1, impl: func(l ref.Val) ref.Val {
		out := ref.Val(types.NullValue)
		listEach(l, func(v ref.Val) bool {
			if kindOf(v) != kNull {
				out = v
				return false
			}
			return true
		})
		return out
	}},
	{name: "round", arity: 2, impl: fnRound},
	{heavy: true, name: "dateTime", arity: 1, impl: func(v ref.Val) ref.Val {
		switch v := v.(type) {
		case *dateTimeVal:
			return v
		case types.String:
			if t, ok := parseDateTime(string(v)); ok {
				return &dateTimeVal{t}
			}
		}
		return types.NullValue
	}},
	{name: "path", arity: 1, impl: func(v ref.Val) ref.Val {
		if s, ok := v.(types.String); ok {
			return &pathVal{string(s)}
		}
		return types.NullValue
	}},
	{name: "references", arity: 2, impl: fnReferences, heavy: true},

	// namespaced functions
	{heavy: true, name: "strStartsWith", arity: 2, impl: func(a, b ref.Val) ref.Val {
		s, ok1 := a.(types.String)
		p, ok2 := b.(types.String)
		if !ok1 || !ok2 {
			return types.NullValue
		}
		return types.Bool(strings.HasPrefix(string(s), string(p)))
	}},
	{name: "strSplit", arity: 2, impl: fnSplit, heavy: true},
	{name: "arrJoin", arity: 2, impl: fnJoin, heavy: true},
	{name: "arrCompact", arity: 1, impl: fnCompact, heavy: true},
	{name: "arrUnique", arity: 1, impl: fnUnique, heavy: true},
	{name: "arrIntersects", arity: 2, impl: fnIntersects, heavy: true},
	{name: "mathMin", arity: 1, impl: mathReduce(func(acc, x float64) float64 { return math.Min(acc, x) }, false), heavy: true},
	{name: "mathMax", arity: 1, impl: mathReduce(func(acc, x float64) float64 { return math.Max(acc, x) }, false), heavy: true},
	{name: "mathSum", arity: 1, impl: fnSum, heavy: true},
	{name: "mathAvg", arity: 1, impl: fnAvg, heavy: true},

	// score()
	{name: "matchScore", arity: 2, impl: fnMatchScore, heavy: true},
	{name: "scoreOr", arity: 2, impl: func(a, b ref.Val) ref.Val {
		x, _ := num(a)
		y, _ := num(b)
		return types.Double(x + y)
	}},
	{name: "scoreAnd", arity: 2, impl: func(a, b ref.Val) ref.Val {
		x, _ := num(a)
		y, _ := num(b)
		if x == 0 || y == 0 {
			return types.Double(0)
		}
		return types.Double(x + y)
	}},
	{name: "boostScore", arity: 2, impl: func(a, b ref.Val) ref.Val {
		x, _ := num(a)
		y, ok := num(b)
		if !ok || x <= 0 {
			return types.Double(0)
		}
		return types.Double(x + y)
	}},
	{name: "scoreSort", arity: 1, impl: fnScoreSort, heavy: true},
	{name: "ptText", arity: 1, impl: fnPtText, heavy: true},
}

// envOptions declares the library in a cel.Env.
func envOptions() []cel.EnvOption {
	var opts []cel.EnvOption
	for _, d := range library {
		ret := d.ret
		if ret == nil {
			ret = cel.DynType
		}
		args := make([]*cel.Type, d.arity)
		for i := range args {
			args[i] = cel.DynType
		}
		id := "groq_" + d.name
		var b cel.OverloadOpt
		switch f := d.impl.(type) {
		case func(ref.Val) ref.Val:
			b = cel.UnaryBinding(f)
		case func(ref.Val, ref.Val) ref.Val:
			b = cel.BinaryBinding(f)
		case func(...ref.Val) ref.Val:
			b = cel.FunctionBinding(f)
		default:
			panic("groq: bad library entry " + d.name)
		}
		opts = append(opts, cel.Function(d.name, cel.Overload(id, args, ret, b), decls.DisableTypeGuards(true)))
	}
	return opts
}

// costTrackers charge the functions whose work grows with their input by
// the size of their arguments and result, so that CEL's cost limit bounds
// them as well as the comprehensions the translation emits.
func costTrackers() []cost.TrackerOption {
	var opts []cost.TrackerOption
	for _, d := range library {
		if !d.heavy {
			continue
		}
		if selfCharged[d.name] || d.name == "match" || d.name == "matchScore" {
			name := d.name
			opts = append(opts, cost.OverloadTracker("groq_"+name, func(args []ref.Val, result ref.Val) *uint64 {
				if len(args) != 2 {
					return costPtr(1)
				}
				return costPtr(dynamicCost(name, args[0], args[1]))
			}))
			continue
		}
		opts = append(opts, cost.OverloadTracker("groq_"+d.name, func(args []ref.Val, result ref.Val) *uint64 {
			c := uint64(1) + sizeOf(result)
			for _, a := range args {
				c += sizeOf(a)
			}
			if d.name == "order" || d.name == "arrIntersects" || d.name == "arrUnique" {
				c *= 4 // n log n, n*m (bounded by the sizes above for typical inputs)
				if d.name == "arrIntersects" && len(args) == 2 {
					c += sizeOf(args[0]) * sizeOf(args[1])
				}
			}
			return costPtr(c)
		}))
	}
	return opts
}

// costs holds the small costs, so that a cost tracker's answer does not
// allocate (the tracker only reads it).
var costs = func() *[1024]uint64 {
	var t [1024]uint64
	for i := range t {
		t[i] = uint64(i)
	}
	return &t
}()

func costPtr(c uint64) *uint64 {
	if c < uint64(len(costs)) {
		return &costs[c]
	}
	return &c
}

// estimator gives CEL's static cost estimation the cost of the library:
// one unit for the constant-time functions, and for the others the sum of
// their arguments' sizes, unbounded when a size is not known at compile
// time (a document attribute). A program whose estimated worst case is
// within its cost limit needs no runtime cost tracking.
type estimator struct{}

var heavyOverloads = func() map[string]bool {
	m := map[string]bool{}
	for _, d := range library {
		if d.heavy {
			m["groq_"+d.name] = true
		}
	}
	return m
}()

func (estimator) EstimateSize(cost.AstNode) *cost.SizeEstimate { return nil }

func (estimator) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	if !heavyOverloads[overloadID] {
		return nil
	}
	switch overloadID {
	case "groq_inPath":
		// A pattern of literal segments, optionally ending in **, reads at
		// most len(pattern) bytes of the string. Other literal patterns
		// are regular expressions, linear in the string: the call charges
		// that part at run time (dynamicCost).
		if len(args) == 2 {
			if c := args[1].Expr().AsLiteral(); c != nil {
				if p, ok := c.(types.String); ok {
					n := 1 + uint64(len(p))/16
					return &cost.CallEstimate{CostEstimate: cost.CostEstimate{Min: 1, Max: n}}
				}
			}
		}
	case "groq_attrMatch":
		// A literal specification (the translation always emits one): the
		// call charges its work, linear in the text, at run time
		// (dynamicCost); what remains is constant.
		if len(args) == 2 && literalStrings(args[1].Expr()) {
			return &cost.CallEstimate{CostEstimate: cost.CostEstimate{Min: 1, Max: 1}}
		}
	case "groq_isIn":
		// Scalar comparisons against each element of the right operand.
		if len(args) == 2 {
			if sz := args[1].ComputedSize(); sz != nil {
				n := cost.SafeAdd(1, sz.Max)
				return &cost.CallEstimate{CostEstimate: cost.CostEstimate{Min: 1, Max: n}}
			}
		}
	}
	total := uint64(1)
	for _, a := range args {
		sz := a.ComputedSize()
		if sz == nil {
			return &cost.CallEstimate{CostEstimate: cost.CostEstimate{Min: 1, Max: math.MaxUint64}}
		}
		total = cost.SafeAdd(total, sz.Max)
	}
	total = cost.SafeMultiply(total, 4)
	return &cost.CallEstimate{CostEstimate: cost.CostEstimate{Min: 1, Max: total}}
}

// literalStrings reports whether e is a list literal of string literals.
func literalStrings(e ast.Expr) bool {
	if e.Kind() != ast.ListKind {
		return false
	}
	for _, el := range e.AsList().Elements() {
		if el.Kind() != ast.LiteralKind {
			return false
		}
		if _, ok := el.AsLiteral().(types.String); !ok {
			return false
		}
	}
	return true
}

func sizeOf(v ref.Val) uint64 {
	switch v := v.(type) {
	case types.String:
		return uint64(len(v)) / 16
	case traits.Lister:
		return uint64(listLen(v))
	case traits.Mapper:
		if m, ok := v.Value().(map[string]any); ok {
			return uint64(len(m))
		}
		n, _ := v.Size().(types.Int)
		return uint64(n)
	}
	return 0
}

// ---- implementations ----

func fnGet(x, name ref.Val) ref.Val {
	key, ok := name.(types.String)
	if !ok {
		return types.NullValue
	}
	m, ok := x.(traits.Mapper)
	if !ok {
		return types.NullValue
	}
	if raw, ok := m.Value().(map[string]any); ok {
		v, found := raw[string(key)]
		if !found {
			return types.NullValue
		}
		return theAdapter.NativeToValue(v)
	}
	v, found := m.Find(key)
	if !found {
		return types.NullValue
	}
	return v
}

// fnAttrCmp compares an attribute path of x with a literal: spec is the
// constant list [op, literal, key1, key2, …].
func fnAttrCmp(x, spec ref.Val) ref.Val {
	l, ok := spec.(traits.Lister)
	if !ok {
		return types.NullValue
	}
	n, _ := l.Size().(types.Int)
	if n < 3 {
		return types.NullValue
	}
	v := x
	for i := types.Int(2); i < n; i++ {
		v = fnGet(v, l.Get(i))
	}
	op, lit := l.Get(types.Int(0)), l.Get(types.Int(1))
	switch op {
	case types.String("defined"):
		return types.Bool(kindOf(v) != kNull)
	case types.String("in"):
		return fnIn(v, lit)
	case types.String("=="):
		return types.Bool(equal(v, lit))
	case types.String("!="):
		return types.Bool(!equal(v, lit))
	}
	c, comparable := partialCompare(v, lit)
	if !comparable {
		return types.NullValue
	}
	switch op {
	case types.String("<"):
		return types.Bool(c < 0)
	case types.String("<="):
		return types.Bool(c <= 0)
	case types.String(">"):
		return types.Bool(c > 0)
	case types.String(">="):
		return types.Bool(c >= 0)
	}
	return types.NullValue
}

// fnAttrMatch is attribute match "pattern": spec is [pattern, key1, …].
func fnAttrMatch(x, spec ref.Val) ref.Val {
	l, ok := spec.(traits.Lister)
	if !ok {
		return types.False
	}
	n, _ := l.Size().(types.Int)
	if n < 2 {
		return types.False
	}
	v := x
	for i := types.Int(1); i < n; i++ {
		v = fnGet(v, l.Get(i))
	}
	return fnMatch(v, l.Get(types.Int(0)))
}

func fnElem(x, idx ref.Val) ref.Val {
	if kindOf(x) != kArray {
		return types.NullValue
	}
	f, ok := num(idx)
	if !ok || f != math.Trunc(f) {
		return types.NullValue
	}
	n := listLen(x)
	if f < 0 {
		f += float64(n)
	}
	if f < 0 || f >= float64(n) {
		return types.NullValue
	}
	return x.(traits.Lister).Get(types.Int(int64(f)))
}

func fnSlice(args ...ref.Val) ref.Val {
	x, lo, hi, excl := args[0], args[1], args[2], args[3]
	if kindOf(x) != kArray {
		return types.NullValue
	}
	l, ok1 := num(lo)
	h, ok2 := num(hi)
	if !ok1 || !ok2 {
		return types.NullValue
	}
	n := float64(listLen(x))
	l, h = math.Trunc(l), math.Trunc(h)
	if l < 0 {
		l += n
	}
	if h < 0 {
		h += n
	}
	if excl != types.True {
		h++
	}
	l = math.Max(0, math.Min(l, n))
	h = math.Max(0, math.Min(h, n))
	if h <= l {
		return types.NewDynamicList(theAdapter, []any{})
	}
	if raw, ok := x.(traits.Lister).Value().([]any); ok {
		return types.NewDynamicList(theAdapter, raw[int(l):int(h)])
	}
	out := make([]ref.Val, 0, int(h-l))
	i := 0
	listEach(x, func(v ref.Val) bool {
		if i >= int(l) && i < int(h) {
			out = append(out, v)
		}
		i++
		return i < int(h)
	})
	return types.NewRefValList(theAdapter, out)
}

func fnFlatten(l ref.Val) ref.Val {
	if kindOf(l) != kArray {
		return types.NullValue
	}
	out := make([]ref.Val, 0, listLen(l))
	listEach(l, func(v ref.Val) bool {
		if kindOf(v) == kArray {
			listEach(v, func(e ref.Val) bool { out = append(out, e); return true })
		} else {
			out = append(out, v)
		}
		return true
	})
	return types.NewRefValList(theAdapter, out)
}

// refIndex is the id → document index `->` uses, built once per Env.
type refIndex struct{ byID map[string]any }

func (r *refIndex) ConvertToNative(t reflect.Type) (any, error) { return nil, errUnsupported }
func (r *refIndex) ConvertToType(t ref.Type) ref.Val            { return types.NewErr("no conversion") }
func (r *refIndex) Equal(o ref.Val) ref.Val                     { return types.Bool(o == ref.Val(r)) }
func (r *refIndex) Type() ref.Type                              { return refIndexType }
func (r *refIndex) Value() any                                  { return r.byID }

func fnDeref(idx, x ref.Val) ref.Val {
	r, ok := idx.(*refIndex)
	if !ok {
		return types.NullValue
	}
	id, ok := fnGet(x, types.String("_ref")).(types.String)
	if !ok {
		return types.NullValue
	}
	doc, ok := r.byID[string(id)]
	if !ok {
		return types.NullValue
	}
	return theAdapter.NativeToValue(doc)
}

func fnObject(keys, values ref.Val) ref.Val {
	ks, _ := goList(keys)
	out := make(map[string]any, len(ks))
	i := 0
	listEach(values, func(v ref.Val) bool {
		if i >= len(ks) {
			return false
		}
		switch k := ks[i].(type) {
		case string:
			out[k] = toGo(v)
		default: // splat
			if m, ok := goMap(v); ok {
				for mk, mv := range m {
					out[mk] = mv
				}
			}
		}
		i++
		return true
	})
	return &objVal{out}
}

func fnArray(values, splats ref.Val) ref.Val {
	sp, _ := goList(splats)
	out := make([]ref.Val, 0, len(sp))
	i := 0
	listEach(values, func(v ref.Val) bool {
		if i < len(sp) && sp[i] == true {
			if kindOf(v) == kArray {
				listEach(v, func(e ref.Val) bool { out = append(out, e); return true })
			}
		} else {
			out = append(out, v)
		}
		i++
		return true
	})
	return types.NewRefValList(theAdapter, out)
}

// fnOrder sorts tuples [value, key1, key2, ...] by their keys (stable);
// desc is a list of booleans, one per key.
func fnOrder(tuples, desc ref.Val) ref.Val {
	ds, _ := goList(desc)
	type row struct {
		v    ref.Val
		keys []ref.Val
	}
	var rows []row
	listEach(tuples, func(t ref.Val) bool {
		var r row
		first := true
		listEach(t, func(e ref.Val) bool {
			if first {
				r.v = e
				first = false
			} else {
				r.keys = append(r.keys, e)
			}
			return true
		})
		rows = append(rows, r)
		return true
	})
	sortStable(len(rows), func(i, j int) bool {
		for k := range rows[i].keys {
			if k >= len(rows[j].keys) {
				break
			}
			c := totalCompare(rows[i].keys[k], rows[j].keys[k])
			if k < len(ds) && ds[k] == true {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return false
	}, func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	out := make([]ref.Val, len(rows))
	for i, r := range rows {
		out[i] = r.v
	}
	return types.NewRefValList(theAdapter, out)
}

func fnAnd(a, b ref.Val) ref.Val {
	if a == types.False || b == types.False {
		return types.False
	}
	if a == types.True && b == types.True {
		return types.True
	}
	return types.NullValue
}

func fnOr(a, b ref.Val) ref.Val {
	if a == types.True || b == types.True {
		return types.True
	}
	if a == types.False && b == types.False {
		return types.False
	}
	return types.NullValue
}

func cmpOp(ok func(int) bool) func(a, b ref.Val) ref.Val {
	return func(a, b ref.Val) ref.Val {
		c, comparable := partialCompare(a, b)
		if !comparable {
			return types.NullValue
		}
		return types.Bool(ok(c))
	}
}

func fnIn(a, b ref.Val) ref.Val {
	switch kindOf(b) {
	case kArray:
		found := false
		listEach(b, func(e ref.Val) bool {
			if equal(a, e) {
				found = true
				return false
			}
			return true
		})
		return types.Bool(found)
	case kPath:
		if p, ok := a.(*pathVal); ok {
			a = types.String(p.pattern)
		}
		return fnInPath(a, types.String(b.(*pathVal).pattern))
	}
	return types.NullValue
}

func fnInRange(args ...ref.Val) ref.Val {
	v, lo, hi, excl := args[0], args[1], args[2], args[3]
	l, ok := partialCompare(v, lo)
	if !ok {
		return types.NullValue
	}
	h, ok := partialCompare(v, hi)
	if !ok {
		return types.NullValue
	}
	if excl == types.True {
		return types.Bool(l >= 0 && h < 0)
	}
	return types.Bool(l >= 0 && h <= 0)
}

func fnInPath(a, pattern ref.Val) ref.Val {
	if pv, ok := a.(*pathVal); ok {
		a = types.String(pv.pattern)
	}
	s, ok := a.(types.String)
	if !ok {
		return types.NullValue
	}
	p, ok := pattern.(types.String)
	if !ok {
		return types.NullValue
	}
	return types.Bool(pathMatch(string(p), string(s)))
}

// prefixPattern reports whether a path pattern has no wildcard except a
// final "**" segment.
func prefixPattern(p string) bool {
	p = strings.TrimSuffix(p, ".**")
	if p == "**" {
		return false
	}
	for p != "" {
		seg, rest, _ := strings.Cut(p, ".")
		if seg == "*" || seg == "**" {
			return false
		}
		p = rest
	}
	return true
}

// pathMatch matches s against a GROQ path pattern: segments separated by
// dots, where * is one segment ([^.]+) and ** is anything (.*), as groq-js
// does. Patterns of literal segments (optionally ending in **) are a
// string comparison; the others compile to a (linear-time) regular
// expression, cached.
func pathMatch(pattern, s string) bool {
	if prefixPattern(pattern) {
		if prefix, ok := strings.CutSuffix(pattern, ".**"); ok {
			return len(s) > len(prefix) && s[len(prefix)] == '.' && strings.HasPrefix(s, prefix)
		}
		return s == pattern
	}
	return pathRegexp(pattern).MatchString(s)
}

var (
	pathRes   sync.Map // pattern → *regexp.Regexp
	pathResN  atomic.Int64
	maxPathRe = int64(4096)
)

func pathRegexp(pattern string) *regexp.Regexp {
	if re, ok := pathRes.Load(pattern); ok {
		return re.(*regexp.Regexp)
	}
	var b strings.Builder
	b.WriteString(`^`)
	for i, part := range strings.Split(pattern, ".") {
		if i > 0 {
			b.WriteString(`\.`)
		}
		switch part {
		case "*":
			b.WriteString(`[^.]+`)
		case "**":
			b.WriteString(`.*`)
		default:
			b.WriteString(regexp.QuoteMeta(part))
		}
	}
	b.WriteString(`$`)
	re := regexp.MustCompile(b.String())
	if pathResN.Load() < maxPathRe {
		pathResN.Add(1)
		pathRes.Store(pattern, re)
	}
	return re
}

func fnAdd(a, b ref.Val) ref.Val {
	ka, kb := kindOf(a), kindOf(b)
	switch {
	case ka == kDateTime && kb == kNumber:
		f, _ := num(b)
		return &dateTimeVal{a.(*dateTimeVal).t.Add(secs(f))}
	case ka == kNumber && kb == kDateTime:
		f, _ := num(a)
		return &dateTimeVal{b.(*dateTimeVal).t.Add(secs(f))}
	case ka == kNumber && kb == kNumber:
		x, _ := num(a)
		y, _ := num(b)
		return numVal(x + y)
	case ka == kString && kb == kString:
		return a.(types.String) + b.(types.String)
	case ka == kArray && kb == kArray:
		out := make([]ref.Val, 0, listLen(a)+listLen(b))
		add := func(e ref.Val) bool { out = append(out, e); return true }
		listEach(a, add)
		listEach(b, add)
		return types.NewRefValList(theAdapter, out)
	case ka == kObject && kb == kObject:
		ma, _ := goMap(a)
		mb, _ := goMap(b)
		out := make(map[string]any, len(ma)+len(mb))
		for k, v := range ma {
			out[k] = v
		}
		for k, v := range mb {
			out[k] = v
		}
		return &objVal{out}
	}
	return types.NullValue
}

func secs(f float64) time.Duration { return time.Duration(math.Round(f*1e3)) * time.Millisecond }

func fnSub(a, b ref.Val) ref.Val {
	ka, kb := kindOf(a), kindOf(b)
	switch {
	case ka == kDateTime && kb == kNumber:
		f, _ := num(b)
		return &dateTimeVal{a.(*dateTimeVal).t.Add(-secs(f))}
	case ka == kDateTime && kb == kDateTime:
		return numVal(a.(*dateTimeVal).t.Sub(b.(*dateTimeVal).t).Seconds())
	case ka == kNumber && kb == kNumber:
		x, _ := num(a)
		y, _ := num(b)
		return numVal(x - y)
	}
	return types.NullValue
}

func numOp(f func(a, b float64) float64) func(a, b ref.Val) ref.Val {
	return func(a, b ref.Val) ref.Val {
		x, ok1 := num(a)
		y, ok2 := num(b)
		if !ok1 || !ok2 {
			return types.NullValue
		}
		return numVal(f(x, y))
	}
}

// jsPow is Math.pow: unlike Go, 1 ** ±Infinity and 1 ** NaN are NaN.
func jsPow(a, b float64) float64 {
	if math.IsNaN(b) || (math.Abs(a) == 1 && math.IsInf(b, 0)) {
		return math.NaN()
	}
	return math.Pow(a, b)
}

// lowerJS and upperJS convert case as JavaScript's toLowerCase and
// toUpperCase do: Unicode's full case mappings (ß → SS, final sigma),
// without language-specific rules.
func lowerJS(s string) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	return cases.Lower(language.Und).String(s)
}

func upperJS(s string) string {
	if isASCII(s) {
		return strings.ToUpper(s)
	}
	return cases.Upper(language.Und).String(s)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func strFn(f func(string) string) func(ref.Val) ref.Val {
	return func(v ref.Val) ref.Val {
		s, ok := v.(types.String)
		if !ok {
			return types.NullValue
		}
		return types.String(f(string(s)))
	}
}

// scalarString is JavaScript's `${v}` for the scalar GROQ types.
func scalarString(v ref.Val) (string, bool) {
	switch v := v.(type) {
	case types.String:
		return string(v), true
	case types.Bool:
		if v {
			return "true", true
		}
		return "false", true
	case *dateTimeVal:
		return formatDateTime(v.t), true
	}
	if f, ok := num(v); ok {
		return formatNumber(f), true
	}
	return "", false
}

func fnString(v ref.Val) ref.Val {
	if s, ok := scalarString(v); ok {
		return types.String(s)
	}
	return types.NullValue
}

func fnRound(v, p ref.Val) ref.Val {
	f, ok := num(v)
	if !ok {
		return types.NullValue
	}
	prec := 0.0
	if p != nil && p != types.Int(-1) { // round(x) is emitted as round(x, -1)
		pf, ok := num(p)
		if !ok || pf < 0 || pf != math.Trunc(pf) {
			return types.NullValue
		}
		prec = pf
	}
	return numVal(roundTo(f, int(prec)))
}

func fnReferences(this, ids ref.Val) ref.Val {
	set := map[string]bool{}
	listEach(ids, func(a ref.Val) bool {
		switch a := a.(type) {
		case types.String:
			set[string(a)] = true
		case traits.Lister:
			listEach(a, func(e ref.Val) bool {
				if s, ok := e.(types.String); ok {
					set[string(s)] = true
				}
				return true
			})
		}
		return true
	})
	if len(set) == 0 {
		return types.False
	}
	return types.Bool(hasReference(toGo(this), set, 0))
}

func hasReference(v any, set map[string]bool, depth int) bool {
	if depth > 1000 {
		return false
	}
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if hasReference(e, set, depth+1) {
				return true
			}
		}
	case map[string]any:
		if r, ok := v["_ref"]; ok && r != nil && r != false && r != "" && r != 0.0 {
			s, ok := r.(string)
			return ok && set[s]
		}
		for _, e := range v {
			if hasReference(e, set, depth+1) {
				return true
			}
		}
	}
	return false
}

func fnSplit(a, b ref.Val) ref.Val {
	s, ok1 := a.(types.String)
	sep, ok2 := b.(types.String)
	if !ok1 || !ok2 {
		return types.NullValue
	}
	if len(s) == 0 {
		return types.NewDynamicList(theAdapter, []any{})
	}
	var parts []string
	if len(sep) == 0 {
		for _, r := range string(s) {
			parts = append(parts, string(r))
		}
	} else {
		parts = strings.Split(string(s), string(sep))
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return types.NewDynamicList(theAdapter, out)
}

func fnJoin(a, b ref.Val) ref.Val {
	if kindOf(a) != kArray {
		return types.NullValue
	}
	sep, ok := b.(types.String)
	if !ok {
		return types.NullValue
	}
	var sb strings.Builder
	bad := false
	first := true
	listEach(a, func(e ref.Val) bool {
		s, ok := scalarString(e)
		if !ok {
			bad = true
			return false
		}
		if !first {
			sb.WriteString(string(sep))
		}
		first = false
		sb.WriteString(s)
		return true
	})
	if bad {
		return types.NullValue
	}
	return types.String(sb.String())
}

func fnCompact(a ref.Val) ref.Val {
	if kindOf(a) != kArray {
		return types.NullValue
	}
	out := make([]ref.Val, 0, listLen(a))
	listEach(a, func(e ref.Val) bool {
		if kindOf(e) != kNull {
			out = append(out, e)
		}
		return true
	})
	return types.NewRefValList(theAdapter, out)
}

func fnUnique(a ref.Val) ref.Val {
	if kindOf(a) != kArray {
		return types.NullValue
	}
	type key struct {
		k kind
		s string
		f float64
	}
	seen := map[key]bool{}
	out := make([]ref.Val, 0, listLen(a))
	listEach(a, func(e ref.Val) bool {
		var k key
		switch kindOf(e) {
		case kNumber:
			f, _ := num(e)
			k = key{k: kNumber, f: f}
		case kString:
			k = key{k: kString, s: string(e.(types.String))}
		case kBool:
			k = key{k: kBool, f: map[bool]float64{false: 0, true: 1}[bool(e.(types.Bool))]}
		case kNull:
			k = key{k: kNull}
		case kDateTime:
			// groq-js keys datetimes by object identity: every one is kept.
			out = append(out, e)
			return true
		default:
			out = append(out, e)
			return true
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
		return true
	})
	return types.NewRefValList(theAdapter, out)
}

func fnIntersects(a, b ref.Val) ref.Val {
	if kindOf(a) != kArray || kindOf(b) != kArray {
		return types.NullValue
	}
	found := false
	listEach(a, func(x ref.Val) bool {
		listEach(b, func(y ref.Val) bool {
			if equal(x, y) {
				found = true
			}
			return !found
		})
		return !found
	})
	return types.Bool(found)
}

func mathReduce(f func(acc, x float64) float64, _ bool) func(ref.Val) ref.Val {
	return func(a ref.Val) ref.Val {
		if kindOf(a) != kArray {
			return types.NullValue
		}
		var acc float64
		have, bad := false, false
		listEach(a, func(e ref.Val) bool {
			if kindOf(e) == kNull {
				return true
			}
			x, ok := num(e)
			if !ok {
				bad = true
				return false
			}
			if !have {
				acc, have = x, true
			} else {
				acc = f(acc, x)
			}
			return true
		})
		if bad || !have {
			return types.NullValue
		}
		return numVal(acc)
	}
}

func fnSum(a ref.Val) ref.Val {
	if kindOf(a) != kArray {
		return types.NullValue
	}
	sum, bad := 0.0, false
	listEach(a, func(e ref.Val) bool {
		if kindOf(e) == kNull {
			return true
		}
		x, ok := num(e)
		if !ok {
			bad = true
			return false
		}
		sum += x
		return true
	})
	if bad {
		return types.NullValue
	}
	return numVal(sum)
}

func fnAvg(a ref.Val) ref.Val {
	if kindOf(a) != kArray {
		return types.NullValue
	}
	sum, n, bad := 0.0, 0, false
	listEach(a, func(e ref.Val) bool {
		if kindOf(e) == kNull {
			return true
		}
		x, ok := num(e)
		if !ok {
			bad = true
			return false
		}
		sum += x
		n++
		return true
	})
	if bad || n == 0 {
		return types.NullValue
	}
	return numVal(sum / float64(n))
}

// ---- match ----

func isWordByte(r rune) bool {
	return r < 0x80 && (r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r))
}

// stripEdgeDots removes runs of dots that touch a word character, as
// groq-js's /(\b\.+|\.+\b)/g replacement does.
func stripEdgeDots(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	rs := []rune(s)
	var out []rune
	for i := 0; i < len(rs); {
		if rs[i] != '.' {
			out = append(out, rs[i])
			i++
			continue
		}
		j := i
		for j < len(rs) && rs[j] == '.' {
			j++
		}
		prevWord := i > 0 && isWordByte(rs[i-1])
		nextWord := j < len(rs) && isWordByte(rs[j])
		if !prevWord && !nextWord {
			out = append(out, rs[i:j]...)
		}
		i = j
	}
	return string(out)
}

// asciiSep caches isTokenSepRune for ASCII characters, [wildcard][c].
var asciiSep = func() (t [2][128]bool) {
	for c := range 128 {
		t[0][c] = isTokenSepRune(rune(c), false)
		t[1][c] = isTokenSepRune(rune(c), true)
	}
	return t
}()

func isTokenSep(r rune, wildcard bool) bool {
	if r < 0x80 {
		w := 0
		if wildcard {
			w = 1
		}
		return asciiSep[w][r]
	}
	return isTokenSepRune(r, wildcard)
}

func isTokenSepRune(r rune, wildcard bool) bool {
	switch r {
	case '!', '@', '#', '$', '%', '^', '&', '(', ')', ',', '\\', '/', '?', '"', ';', ':', '{', '}', '|', '[', ']', '+', '<', '>', '-':
		return true
	case '*':
		return !wildcard
	case '\ufeff', '\u00a0':
		return true
	}
	return r < 0x80 && (r == ' ' || (r >= '\t' && r <= '\r')) || r >= 0x80 && unicode.IsSpace(r)
}

// tokenize appends the tokens of s to dst: runs of characters that are not
// separators, after removing dots at word edges. Tokens are substrings of
// s (or of s without those dots): no allocation beyond dst.
func tokenize(s string, wildcard bool, dst []string) []string {
	s = stripEdgeDots(s)
	start := -1
	for i, r := range s {
		if isTokenSep(r, wildcard) {
			if start >= 0 {
				dst = append(dst, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		dst = append(dst, s[start:])
	}
	return dst
}

const maxTermLength = 1024

// termMatch matches a token against a pattern term: * is any run of
// characters, . any one character (groq-js builds a regular expression
// from the term), case-insensitively.
func termMatch(term, token string) bool {
	if !strings.ContainsAny(term, "*.") {
		return strings.EqualFold(term, token)
	}
	if prefix, ok := strings.CutSuffix(term, "*"); ok && !strings.ContainsAny(prefix, "*.") {
		return foldPrefix(token, prefix)
	}
	return termMatchDP([]rune(term), []rune(token))
}

// foldPrefix reports whether s starts with prefix, ignoring case.
func foldPrefix(s, prefix string) bool {
	// ASCII fast path: two ASCII characters fold to each other exactly
	// when they are the same letter in either case.
	i := 0
	for ; i < len(prefix) && i < len(s); i++ {
		p, c := prefix[i], s[i]
		if p >= 0x80 || c >= 0x80 {
			break
		}
		if p != c && (p|0x20 != c|0x20 || p|0x20 < 'a' || p|0x20 > 'z') {
			return false
		}
	}
	if i == len(prefix) {
		return true
	}
	return foldPrefixRunes(s[i:], prefix[i:])
}

// foldPrefixRunes is foldPrefix rune by rune, with Unicode's simple case
// folding.
func foldPrefixRunes(s, prefix string) bool {
	for _, pr := range prefix {
		if s == "" {
			return false
		}
		sr, n := utf8.DecodeRuneInString(s)
		if !foldEq(pr, sr) {
			return false
		}
		s = s[n:]
	}
	return true
}

func termMatchDP(term, token []rune) bool {
	// dp[j]: term[:i] matches token[:j]
	dp := make([]bool, len(token)+1)
	next := make([]bool, len(token)+1)
	dp[0] = true
	for _, c := range term {
		next[0] = c == '*' && dp[0]
		for j := 1; j <= len(token); j++ {
			switch c {
			case '*':
				next[j] = dp[j] || next[j-1]
			case '.':
				next[j] = dp[j-1]
			default:
				next[j] = dp[j-1] && foldEq(c, token[j-1])
			}
		}
		dp, next = next, dp
	}
	return dp[len(token)]
}

func foldEq(a, b rune) bool {
	if a == b {
		return true
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// gather appends the tokens of a string or array of strings to dst; ok
// is false when v is neither or an array holds a non-string.
func gather(v ref.Val, wildcard bool, dst []string) (tokens []string, ok bool) {
	switch v := v.(type) {
	case types.String:
		return tokenize(string(v), wildcard, dst), true
	case traits.Lister:
		ok = true
		listEach(v, func(e ref.Val) bool {
			s, isStr := e.(types.String)
			if !isStr {
				ok = false
				return true
			}
			dst = tokenize(string(s), wildcard, dst)
			return true
		})
		return dst, ok
	}
	return dst, false
}

func fnMatch(text, pattern ref.Val) ref.Val {
	var tbuf [32]string
	var pbuf [8]string
	tokens, _ := gather(text, false, tbuf[:0])
	terms, ok := gather(pattern, true, pbuf[:0])
	if !ok || len(tokens) == 0 || len(terms) == 0 {
		return types.False
	}
	for _, term := range terms {
		if utf8.RuneCountInString(term) > maxTermLength {
			term = string([]rune(term)[:maxTermLength])
		}
		hit := false
		for _, tok := range tokens {
			if termMatch(term, tok) {
				hit = true
				break
			}
		}
		if !hit {
			return types.False
		}
	}
	return types.True
}

// fnMatchScore scores text match pattern by term frequency (BM25's
// saturation with k = 1.2), as groq-js does.
func fnMatchScore(text, pattern ref.Val) ref.Val {
	tokens, _ := gather(text, false, nil)
	terms, ok := gather(pattern, true, nil)
	if !ok || len(tokens) == 0 || len(terms) == 0 {
		return types.Double(0)
	}
	const k = 1.2
	score := 0.0
	for _, term := range terms {
		freq := 0.0
		for _, tok := range tokens {
			if termMatch(term, tok) {
				freq++
			}
		}
		score += freq * (k + 1) / (freq + k)
	}
	return types.Double(score)
}

// fnScoreSort takes tuples [value, score1, score2, …]: objects get _score
// (their previous numeric _score plus the scores) and are returned sorted
// by it, highest first (stable); other values are dropped.
func fnScoreSort(tuples ref.Val) ref.Val {
	type row struct {
		obj   map[string]any
		score float64
	}
	var rows []row
	listEach(tuples, func(t ref.Val) bool {
		var r row
		first, ok := true, false
		listEach(t, func(e ref.Val) bool {
			if first {
				first = false
				var m map[string]any
				m, ok = goMap(e)
				if !ok {
					return false
				}
				r.obj = make(map[string]any, len(m)+1)
				for k, v := range m {
					r.obj[k] = v
				}
				if s, isNum := m["_score"].(float64); isNum {
					r.score = s
				}
				return true
			}
			f, _ := num(e)
			r.score += f
			return true
		})
		if ok {
			r.obj["_score"] = r.score
			rows = append(rows, r)
		}
		return true
	})
	sortStable(len(rows), func(i, j int) bool { return rows[i].score > rows[j].score },
		func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	out := make([]any, len(rows))
	for i, r := range rows {
		out[i] = r.obj
	}
	return types.NewDynamicList(theAdapter, out)
}

// fnPtText is pt::text: the plain text of a Portable Text block or array
// of blocks (span texts concatenated, blocks separated by a blank line).
func fnPtText(v ref.Val) ref.Val {
	switch x := toGo(v).(type) {
	case map[string]any:
		if t, ok := blockText(x); ok {
			return types.String(t)
		}
	case []any:
		var texts []string
		arrayText(x, &texts, 0)
		if len(texts) > 0 {
			return types.String(strings.Join(texts, "\n\n"))
		}
	}
	return types.NullValue
}

func arrayText(a []any, out *[]string, depth int) {
	if depth > 100 {
		return
	}
	for _, b := range a {
		switch x := b.(type) {
		case map[string]any:
			if t, ok := blockText(x); ok {
				*out = append(*out, t)
			}
		case []any:
			arrayText(x, out, depth+1)
		}
	}
}

func blockText(block map[string]any) (string, bool) {
	if _, ok := block["_type"].(string); !ok {
		return "", false
	}
	children, ok := block["children"].([]any)
	if !ok {
		return "", false
	}
	var sb strings.Builder
	for _, c := range children {
		m, ok := c.(map[string]any)
		if !ok || m["_type"] != "span" {
			continue
		}
		if t, ok := m["text"].(string); ok {
			sb.WriteString(t)
		}
	}
	return sb.String(), true
}
