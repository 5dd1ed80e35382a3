package groq

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vellum-db/vellum/authz/groq/syntax"
)

// The translation from a GROQ syntax tree to CEL source text.
//
// Traversals. The syntax tree keeps postfix chains as written (a[].b{c});
// GROQ gives a chain its meaning as a whole: which step maps over an array
// and which applies to the value itself. translateChain applies the
// traversal algebra of the GROQ spec (the same one groq-js uses): every
// step is "plain" (.a, ->), "element" ([0]), "array" ([cond], [a..b], [])
// or "projection" ({…}), and steps after an array step are mapped over its
// elements (flattening after [] when the rest yields arrays). The result is
// an intermediate tree with explicit map and flat-map nodes.
//
// Scopes. GROQ evaluates filters, projections and order keys in a nested
// scope whose @ is the element and whose ^ is the enclosing scope. Each
// scope gets its own CEL variable (s0 is the root @, then v1, v2, …), bound
// by a comprehension (filter/map macros) or cel.bind, so ^ is a compile-time
// choice of variable. Maps over traversals use GROQ's "hidden" scopes: a
// nested scope opened inside one replaces it rather than nesting under it.
//
// Everything else is a call of the function library (funcs.go) with GROQ
// semantics: get(x, "a") is null on a non-object, eq/lt/… follow GROQ's
// equality and partial order, and(a, b) is three-valued, and so on.

// intermediate nodes produced by the traversal algebra
type (
	irThis  struct{}
	irChain struct { // one traversal step applied to base
		step syntax.Node // the syntax node of the step (its Base is ignored)
		base any
	}
	irMap struct {
		base, expr any
		flat       bool
	}
)

type travKind int

const (
	tAA travKind = iota // array in, array out
	tAB                 // array in, value out
	tBA                 // value in, array out
	tBB                 // value in, value out
)

type traversal struct {
	kind  travKind
	build func(base any) any
}

func join(a, b func(any) any) func(any) any { return func(x any) any { return b(a(x)) } }

func mapT(inner func(any) any, flat bool) func(any) any {
	return func(base any) any { return &irMap{base: base, expr: inner(irThis{}), flat: flat} }
}

func traverseArray(build func(any) any, right *traversal) *traversal {
	if right == nil {
		return &traversal{tAA, build}
	}
	switch right.kind {
	case tAA:
		return &traversal{tAA, join(build, right.build)}
	case tAB:
		return &traversal{tAB, join(build, right.build)}
	case tBB:
		return &traversal{tAA, join(build, mapT(right.build, false))}
	default: // tBA
		return &traversal{tAA, join(build, mapT(right.build, true))}
	}
}

func traversePlain(build func(any) any, right *traversal) *traversal {
	if right == nil {
		return &traversal{tBB, build}
	}
	switch right.kind {
	case tAA, tBA:
		return &traversal{tBA, join(build, right.build)}
	default:
		return &traversal{tBB, join(build, right.build)}
	}
}

func traverseElement(build func(any) any, right *traversal) *traversal {
	if right == nil {
		return &traversal{tAB, build}
	}
	switch right.kind {
	case tAA, tBA:
		return &traversal{tAA, join(build, right.build)}
	default:
		return &traversal{tAB, join(build, right.build)}
	}
}

func traverseProjection(build func(any) any, right *traversal) *traversal {
	if right == nil {
		return &traversal{tBB, build}
	}
	switch right.kind {
	case tAA:
		return &traversal{tAA, join(mapT(build, false), right.build)}
	case tAB:
		return &traversal{tAB, join(mapT(build, false), right.build)}
	case tBA:
		return &traversal{tBA, join(build, right.build)}
	default:
		return &traversal{tBB, join(build, right.build)}
	}
}

func stepBase(n syntax.Node) (syntax.Node, bool) {
	switch n := n.(type) {
	case *syntax.Attribute:
		return n.Base, true
	case *syntax.Element:
		return n.Base, true
	case *syntax.Slice:
		return n.Base, true
	case *syntax.Filter:
		return n.Base, true
	case *syntax.ArrayPostfix:
		return n.Base, true
	case *syntax.Projection:
		return n.Base, true
	case *syntax.Deref:
		return n.Base, true
	}
	return nil, false
}

// translateChain turns a postfix chain into the intermediate tree.
func translateChain(n syntax.Node) any {
	var steps []syntax.Node // outermost first
	cur := n
	for {
		b, ok := stepBase(cur)
		if !ok {
			break
		}
		steps = append(steps, cur)
		cur = b
	}
	var t *traversal
	for _, s := range steps {
		step := s
		build := func(base any) any { return &irChain{step: step, base: base} }
		switch step.(type) {
		case *syntax.Attribute, *syntax.Deref:
			t = traversePlain(build, t)
		case *syntax.Element:
			t = traverseElement(build, t)
		case *syntax.Slice, *syntax.Filter, *syntax.ArrayPostfix:
			t = traverseArray(build, t)
		case *syntax.Projection:
			t = traverseProjection(build, t)
		}
	}
	switch cur.(type) {
	case *syntax.Everything, *syntax.Array, *syntax.PipeCall:
		t = traverseArray(func(x any) any { return x }, t)
	}
	return t.build(cur)
}

// scope is the compile-time view of GROQ's scopes: the CEL variable of
// each enclosing scope, innermost last.
type scope struct {
	names  []string
	hidden bool
}

func (s *scope) this() string { return s.names[len(s.names)-1] }

func (s *scope) nested(name string) *scope {
	n := len(s.names)
	if s.hidden {
		n--
	}
	names := make([]string, n, n+1)
	copy(names, s.names[:n])
	return &scope{names: append(names, name)}
}

func (s *scope) hiddenScope(name string) *scope {
	ns := s.nested(name)
	ns.hidden = true
	return ns
}

type paramRef struct {
	name string
	pos  syntax.Span
}

type translator struct {
	query  string
	mode   Mode
	nvar   int
	params []paramRef
	err    *Error
	sb     strings.Builder

	funcs     map[string]*syntax.FuncDecl // custom functions (fn) by namespace::name
	fnArgs    map[string]string           // inside a custom function body: $param → CEL variable
	expanding map[string]bool             // custom functions being expanded (no recursion)
}

func (t *translator) fail(code string, pos syntax.Span, format string, args ...any) {
	if t.err != nil {
		return
	}
	t.err = &Error{
		Code:        code,
		Description: fmt.Sprintf(format, args...),
		Start:       syntax.CharOffset(t.query, pos.Start),
		End:         syntax.CharOffset(t.query, pos.End),
		Query:       t.query,
	}
}

func (t *translator) rejectInFilter(pos syntax.Span, what string) bool {
	if t.mode != ModeFilter {
		return false
	}
	t.fail(CodeInvalidFilter, pos, "%s is not allowed in a filter: a filter is a function of one document", what)
	return true
}

func (t *translator) newVar(prefix string) string {
	t.nvar++
	return prefix + strconv.Itoa(t.nvar)
}

func (t *translator) w(s string) { t.sb.WriteString(s) }

// emit writes the CEL translation of n (a syntax node or an intermediate
// node) in scope sc.
func (t *translator) emit(n any, sc *scope) {
	if t.err != nil {
		return
	}
	switch n := n.(type) {
	case irThis:
		t.w(sc.this())
	case *irMap:
		tmp := t.newVar("t")
		v := t.newVar("v")
		inner := sc.hiddenScope(v)
		t.w("cel.bind(" + tmp + ", ")
		t.emit(n.base, sc)
		t.w(", isArray(" + tmp + ") ? ")
		if n.flat {
			t.w("flatten(" + tmp + ".map(" + v + ", ")
			t.emit(n.expr, inner)
			t.w("))")
		} else {
			t.w("dyn(" + tmp + ".map(" + v + ", ")
			t.emit(n.expr, inner)
			t.w("))")
		}
		t.w(" : null)")
	case *irChain:
		t.emitStep(n.step, n.base, sc)
	case syntax.Node:
		if _, ok := stepBase(n); ok {
			t.emit(translateChain(n), sc)
			return
		}
		t.emitNode(n, sc)
	default:
		t.fail(CodeParseError, syntax.Span{}, "internal: unexpected node %T", n)
	}
}

func (t *translator) emitStep(step syntax.Node, base any, sc *scope) {
	switch s := step.(type) {
	case *syntax.Attribute:
		t.w("get(")
		t.emit(base, sc)
		t.w(", " + celString(s.Name) + ")")
	case *syntax.Element:
		t.w("elem(")
		t.emit(base, sc)
		t.w(", " + celNumber(s.Value) + ")")
	case *syntax.Slice:
		t.w("slice(")
		t.emit(base, sc)
		t.w(", ")
		t.emit(s.Low, sc)
		t.w(", ")
		t.emit(s.High, sc)
		t.w(", " + strconv.FormatBool(s.Exclusive) + ")")
	case *syntax.ArrayPostfix:
		t.w("arrayOrNull(")
		t.emit(base, sc)
		t.w(")")
	case *syntax.Filter:
		tmp := t.newVar("t")
		v := t.newVar("v")
		t.w("cel.bind(" + tmp + ", ")
		t.emit(base, sc)
		t.w(", isArray(" + tmp + ") ? dyn(" + tmp + ".filter(" + v + ", truth(")
		t.emit(s.Cond, sc.nested(v))
		t.w("))) : null)")
	case *syntax.Projection:
		v := t.newVar("v")
		t.w("cel.bind(" + v + ", ")
		t.emit(base, sc)
		t.w(", isObject(" + v + ") ? ")
		t.emitObject(s.Object, sc.nested(v))
		t.w(" : null)")
	case *syntax.Deref:
		if t.rejectInFilter(s.Pos, "the dereference operator ->") {
			return
		}
		t.w("deref(refs, ")
		t.emit(base, sc)
		t.w(")")
	}
}

var binaryFuncs = map[syntax.Op]string{
	syntax.OpOr: "or", syntax.OpAnd: "and",
	syntax.OpEq: "eq", syntax.OpNeq: "neq",
	syntax.OpLt: "lt", syntax.OpLte: "lte", syntax.OpGt: "gt", syntax.OpGte: "gte",
	syntax.OpIn: "isIn", syntax.OpMatch: "match",
	syntax.OpAdd: "add", syntax.OpSub: "sub", syntax.OpMul: "mul", syntax.OpDiv: "div",
	syntax.OpMod: "mod", syntax.OpPow: "pow",
}

func (t *translator) call(name string, sc *scope, args ...syntax.Node) {
	t.w(name + "(")
	for i, a := range args {
		if i > 0 {
			t.w(", ")
		}
		t.emit(a, sc)
	}
	t.w(")")
}

func (t *translator) list(sc *scope, args []syntax.Node) {
	t.w("[")
	for i, a := range args {
		if i > 0 {
			t.w(", ")
		}
		t.emitDyn(a, sc)
	}
	t.w("]")
}

// emitDyn emits n as a dyn value (literals are wrapped so that list
// literals type-check whatever their element types).
func (t *translator) emitDyn(n syntax.Node, sc *scope) {
	switch n.(type) {
	case *syntax.Null, *syntax.Bool, *syntax.Number, *syntax.String, *syntax.Array:
		t.w("dyn(")
		t.emit(n, sc)
		t.w(")")
	default:
		t.emit(n, sc)
	}
}

func (t *translator) emitNode(n syntax.Node, sc *scope) {
	switch n := n.(type) {
	case *syntax.Null:
		t.w("null")
	case *syntax.Bool:
		t.w(strconv.FormatBool(n.Value))
	case *syntax.Number:
		t.w(celNumber(n.Value))
	case *syntax.String:
		t.w(celString(n.Value))
	case *syntax.Everything:
		if t.rejectInFilter(n.Pos, "* (all documents)") {
			return
		}
		t.w("dataset")
	case *syntax.This:
		t.w(sc.this())
	case *syntax.Parent:
		if t.rejectInFilter(n.Pos, "the parent operator ^") {
			return
		}
		i := len(sc.names) - 1 - n.Level
		if i < 0 {
			t.w("null")
		} else {
			t.w(sc.names[i])
		}
	case *syntax.Param:
		if v, ok := t.fnArgs[n.Name]; ok {
			t.w(v)
			return
		}
		t.params = append(t.params, paramRef{n.Name, n.Pos})
		t.w("get(params, " + celString(n.Name) + ")")
	case *syntax.ThisAttribute:
		t.w("get(" + sc.this() + ", " + celString(n.Name) + ")")
	case *syntax.Group:
		t.emit(n.Expr, sc)
	case *syntax.Array:
		splat := false
		for _, e := range n.Elements {
			splat = splat || e.Splat
		}
		if !splat {
			t.w("[")
			for i, e := range n.Elements {
				if i > 0 {
					t.w(", ")
				}
				t.emitDyn(e.Value, sc)
			}
			t.w("]")
			return
		}
		t.w("array([")
		for i, e := range n.Elements {
			if i > 0 {
				t.w(", ")
			}
			t.emitDyn(e.Value, sc)
		}
		t.w("], [")
		for i, e := range n.Elements {
			if i > 0 {
				t.w(", ")
			}
			t.w(strconv.FormatBool(e.Splat))
		}
		t.w("])")
	case *syntax.Object:
		t.emitObject(n, sc)
	case *syntax.Binary:
		if n.Op == syntax.OpIn {
			right := n.Right
			for {
				g, ok := right.(*syntax.Group)
				if !ok {
					break
				}
				right = g.Expr
			}
			if r, ok := right.(*syntax.Range); ok {
				t.w("inRange(")
				t.emit(n.Left, sc)
				t.w(", ")
				t.emit(r.Low, sc)
				t.w(", ")
				t.emit(r.High, sc)
				t.w(", " + strconv.FormatBool(r.Exclusive) + ")")
				return
			}
			if f, ok := right.(*syntax.FuncCall); ok && f.Namespace == "global" && f.Name == "path" && len(f.Args) == 1 {
				if s, ok := f.Args[0].(*syntax.String); ok {
					t.w("inPath(")
					t.emit(n.Left, sc)
					t.w(", " + celString(s.Value) + ")")
					return
				}
			}
		}
		if t.emitAttrCompare(n, sc) {
			return
		}
		name, ok := binaryFuncs[n.Op]
		if !ok {
			t.fail(CodeParseError, n.Pos, "unknown operator %q", n.Op)
			return
		}
		t.call(name, sc, n.Left, n.Right)
	case *syntax.Unary:
		switch n.Op {
		case syntax.OpNot:
			t.call("not", sc, n.Operand)
		case syntax.OpSub:
			if num, ok := n.Operand.(*syntax.Number); ok {
				t.w(celNumber(-num.Value))
				return
			}
			t.call("neg", sc, n.Operand)
		case syntax.OpAdd:
			t.call("pos", sc, n.Operand)
		default:
			t.fail(CodeParseError, n.Pos, "unknown prefix operator %q", n.Op)
		}
	case *syntax.FuncCall:
		t.emitFunc(n, sc)
	case *syntax.PipeCall:
		t.emitPipe(n, sc)
	case *syntax.Range:
		t.fail(CodeParseError, n.Pos, "a range is only allowed on the right of in or inside [...]")
	case *syntax.Pair:
		t.fail(CodeParseError, n.Pos, "=> is only allowed in select() and objects")
	case *syntax.Asc, *syntax.Desc:
		t.fail(CodeParseError, n.Span(), "asc and desc are only allowed in order()")
	case *syntax.Tuple:
		t.fail(CodeParseError, n.Pos, "a tuple has no value outside a diff selector")
	case *syntax.Nested:
		t.fail(CodeParseError, n.Pos, "a nested selector is only allowed in a diff selector")
	case *syntax.Query:
		t.funcs = map[string]*syntax.FuncDecl{}
		for _, d := range n.Funcs {
			t.funcs[d.Namespace+"::"+d.Name] = d
		}
		t.emit(n.Expr, sc)
	default:
		t.fail(CodeParseError, n.Span(), "unexpected %T", n)
	}
}

func (t *translator) emitObject(o *syntax.Object, sc *scope) {
	t.w("object([")
	for i, e := range o.Entries {
		if i > 0 {
			t.w(", ")
		}
		if a, ok := e.(*syntax.ObjectAttr); ok {
			t.w(celString(a.Key))
		} else {
			t.w("null")
		}
	}
	t.w("], [")
	for i, e := range o.Entries {
		if i > 0 {
			t.w(", ")
		}
		switch e := e.(type) {
		case *syntax.ObjectAttr:
			t.emitDyn(e.Value, sc)
		case *syntax.ObjectSplat:
			t.emitDyn(e.Value, sc)
		case *syntax.ObjectConditional:
			t.call("cond", sc, e.Cond, e.Value)
		default:
			t.fail(CodeParseError, e.Span(), "unexpected object entry %T", e)
		}
	}
	t.w("])")
}

// attrPath returns the attribute names of n when it is a plain attribute
// path of @ (a, a.b, @.a["b"]).
func attrPath(n syntax.Node) ([]string, bool) {
	switch x := n.(type) {
	case *syntax.ThisAttribute:
		return []string{x.Name}, true
	case *syntax.Attribute:
		if _, ok := x.Base.(*syntax.This); ok {
			return []string{x.Name}, true
		}
		p, ok := attrPath(x.Base)
		if !ok {
			return nil, false
		}
		return append(p, x.Name), true
	case *syntax.Group:
		return attrPath(x.Expr)
	}
	return nil, false
}

func isLiteral(n syntax.Node) bool {
	switch n.(type) {
	case *syntax.Null, *syntax.Bool, *syntax.Number, *syntax.String:
		return true
	}
	return false
}

var swapped = map[syntax.Op]syntax.Op{
	syntax.OpEq: syntax.OpEq, syntax.OpNeq: syntax.OpNeq,
	syntax.OpLt: syntax.OpGt, syntax.OpLte: syntax.OpGte, syntax.OpGt: syntax.OpLt, syntax.OpGte: syntax.OpLte,
}

// emitAttrCompare emits the comparison of an attribute path of @ with a
// literal (the most common clause of a filter) as one call over a constant
// list: attrCmp(s0, ["==", "post", "_type"]) is eq(get(s0, "_type"),
// "post") without the intermediate value.
func (t *translator) emitAttrCompare(n *syntax.Binary, sc *scope) bool {
	switch n.Op {
	case syntax.OpIn:
		// attr in [literal, …]
		arr, ok := n.Right.(*syntax.Array)
		path, okPath := attrPath(n.Left)
		if !ok || !okPath {
			return false
		}
		for _, e := range arr.Elements {
			if e.Splat || !isLiteral(e.Value) {
				return false
			}
		}
		t.w("attrCmp(" + sc.this() + ", [\"in\", ")
		t.emitDyn(n.Right, sc)
		t.emitKeys(path)
		return true
	case syntax.OpMatch:
		// attr match "pattern"
		pat, ok := n.Right.(*syntax.String)
		path, okPath := attrPath(n.Left)
		if !ok || !okPath {
			return false
		}
		t.w("attrMatch(" + sc.this() + ", [" + celString(pat.Value))
		t.emitKeys(path)
		return true
	}
	if _, ok := swapped[n.Op]; !ok {
		return false
	}
	op, attr, lit := n.Op, n.Left, n.Right
	if !isLiteral(lit) {
		op, attr, lit = swapped[n.Op], n.Right, n.Left
		if !isLiteral(lit) {
			return false
		}
	}
	path, ok := attrPath(attr)
	if !ok {
		return false
	}
	t.w("attrCmp(" + sc.this() + ", [" + celString(string(op)) + ", dyn(")
	t.emit(lit, sc)
	t.w(")")
	t.emitKeys(path)
	return true
}

// emitKeys closes an attrCmp/attrMatch list with the attribute path.
func (t *translator) emitKeys(path []string) {
	for _, k := range path {
		t.w(", " + celString(k))
	}
	t.w("])")
}

// simple maps a GROQ function to a library function taking the same
// arguments.
var simpleFuncs = map[string]string{
	"global::count": "count", "global::dateTime": "dateTime", "global::defined": "defined",
	"global::length": "length", "global::lower": "lower", "global::upper": "upper",
	"global::path": "path", "global::string": "toString",
	"string::lower": "lower", "string::upper": "upper",
	"string::split": "strSplit", "string::startsWith": "strStartsWith",
	"array::compact": "arrCompact", "array::intersects": "arrIntersects",
	"array::join": "arrJoin", "array::unique": "arrUnique",
	"math::min": "mathMin", "math::max": "mathMax", "math::sum": "mathSum", "math::avg": "mathAvg",
	"pt::text": "ptText",
}

var funcArity = map[string][2]int{
	"global::count": {1, 1}, "global::dateTime": {1, 1}, "global::defined": {1, 1},
	"global::length": {1, 1}, "global::lower": {1, 1}, "global::upper": {1, 1},
	"global::path": {1, 1}, "global::string": {1, 1},
	"string::lower": {1, 1}, "string::upper": {1, 1},
	"string::split": {2, 2}, "string::startsWith": {2, 2},
	"array::compact": {1, 1}, "array::intersects": {2, 2},
	"array::join": {2, 2}, "array::unique": {1, 1},
	"math::min": {1, 1}, "math::max": {1, 1}, "math::sum": {1, 1}, "math::avg": {1, 1},
	"pt::text":         {1, 1},
	"global::coalesce": {0, -1}, "global::identity": {0, 0}, "global::now": {0, 0},
	"global::references": {1, -1}, "global::round": {1, 2}, "global::select": {0, -1},
	"diff::changedAny": {3, 3}, "diff::changedOnly": {3, 3},
}

func (t *translator) emitFunc(f *syntax.FuncCall, sc *scope) {
	full := f.Namespace + "::" + f.Name
	if d, ok := t.funcs[full]; ok {
		t.emitCustom(d, f, sc)
		return
	}
	ar, known := funcArity[full]
	if !known {
		if _, ok := syntax.LookupFunc(f.Namespace, f.Name); ok {
			t.fail(CodeNotSupported, f.Pos, "function %s() is not supported", full)
		} else {
			t.fail(CodeParseError, f.Pos, "unknown function %s()", full)
		}
		return
	}
	if len(f.Args) < ar[0] || (ar[1] >= 0 && len(f.Args) > ar[1]) {
		t.fail(CodeParseError, f.Pos, "function %s() takes %s, got %d", full, arityText(ar), len(f.Args))
		return
	}
	if full == "global::defined" {
		if path, ok := attrPath(f.Args[0]); ok {
			t.w("attrCmp(" + sc.this() + ", [\"defined\", null")
			t.emitKeys(path)
			return
		}
	}
	if name, ok := simpleFuncs[full]; ok {
		t.call(name, sc, f.Args...)
		return
	}
	switch full {
	case "diff::changedAny", "diff::changedOnly":
		key, ok := t.compileSelector(f.Args[2])
		if !ok {
			return
		}
		name := "diffAny"
		if f.Name == "changedOnly" {
			name = "diffOnly"
		}
		t.w(name + "(")
		t.emitDyn(f.Args[0], sc)
		t.w(", ")
		t.emitDyn(f.Args[1], sc)
		t.w(", " + celString(key) + ")")
	case "global::identity":
		t.w("identity")
	case "global::now":
		t.w("now")
	case "global::coalesce":
		t.w("coalesce(")
		t.list(sc, f.Args)
		t.w(")")
	case "global::references":
		t.w("references(" + sc.this() + ", ")
		t.list(sc, f.Args)
		t.w(")")
	case "global::round":
		t.w("round(")
		t.emit(f.Args[0], sc)
		t.w(", ")
		if len(f.Args) == 2 {
			t.emit(f.Args[1], sc)
		} else {
			t.w("-1")
		}
		t.w(")")
	case "global::select":
		closers := 0
		fallback := false
		for i, a := range f.Args {
			if p, ok := a.(*syntax.Pair); ok {
				if fallback {
					t.fail(CodeParseError, a.Span(), "select(): the fallback value must be the last argument")
					return
				}
				t.w("truth(")
				t.emit(p.Cond, sc)
				t.w(") ? ")
				t.emitDyn(p.Value, sc)
				t.w(" : (")
				closers++
				continue
			}
			if i != len(f.Args)-1 {
				t.fail(CodeParseError, a.Span(), "select(): only the last argument may be a fallback without =>")
				return
			}
			fallback = true
			t.emitDyn(a, sc)
		}
		if !fallback {
			t.w("null")
		}
		t.w(strings.Repeat(")", closers))
	}
}

// emitCustom inlines a custom function (fn ns::name($p, …) = body): each
// argument is bound to a CEL variable that $p stands for in the body, and
// the body is evaluated in a scope of its own whose @ is the caller's.
func (t *translator) emitCustom(d *syntax.FuncDecl, f *syntax.FuncCall, sc *scope) {
	full := d.Namespace + "::" + d.Name
	if len(f.Args) != len(d.Params) {
		t.fail(CodeParseError, f.Pos, "function %s() takes %s, got %d", full, arityText([2]int{len(d.Params), len(d.Params)}), len(f.Args))
		return
	}
	if t.expanding[full] {
		t.fail(CodeParseError, f.Pos, "function %s() calls itself", full)
		return
	}
	if t.expanding == nil {
		t.expanding = map[string]bool{}
	}
	t.expanding[full] = true
	defer delete(t.expanding, full)
	args := map[string]string{}
	for i, p := range d.Params {
		v := t.newVar("p")
		args[p.Name] = v
		t.w("cel.bind(" + v + ", ")
		t.emitDyn(f.Args[i], sc)
		t.w(", ")
	}
	saved := t.fnArgs
	t.fnArgs = args
	t.emit(d.Body, &scope{names: []string{sc.this()}})
	t.fnArgs = saved
	t.w(strings.Repeat(")", len(d.Params)))
}

func arityText(ar [2]int) string {
	switch {
	case ar[0] == ar[1]:
		if ar[0] == 1 {
			return "1 argument"
		}
		return fmt.Sprintf("%d arguments", ar[0])
	case ar[1] < 0:
		return fmt.Sprintf("at least %d arguments", ar[0])
	}
	return fmt.Sprintf("%d to %d arguments", ar[0], ar[1])
}

func (t *translator) emitPipe(p *syntax.PipeCall, sc *scope) {
	if t.rejectInFilter(p.Pos, "the pipe function "+p.Name+"()") {
		return
	}
	if p.Name == "score" {
		t.emitScorePipe(p, sc)
		return
	}
	if p.Name != "order" {
		t.fail(CodeNotSupported, p.Pos, "pipe function %s() is not supported", p.Name)
		return
	}
	if len(p.Args) == 0 {
		t.fail(CodeParseError, p.Pos, "order() takes at least 1 argument")
		return
	}
	tmp := t.newVar("t")
	v := t.newVar("v")
	inner := sc.nested(v)
	t.w("cel.bind(" + tmp + ", ")
	t.emit(p.Base, sc)
	t.w(", isArray(" + tmp + ") ? order(" + tmp + ".map(" + v + ", [" + v)
	var desc []string
	for _, a := range p.Args {
		t.w(", ")
		switch a := a.(type) {
		case *syntax.Asc:
			t.emitDyn(a.Expr, inner)
			desc = append(desc, "false")
		case *syntax.Desc:
			t.emitDyn(a.Expr, inner)
			desc = append(desc, "true")
		default:
			t.emitDyn(a, inner)
			desc = append(desc, "false")
		}
	}
	t.w("]), [" + strings.Join(desc, ", ") + "]) : null)")
}

// emitScorePipe translates base | score(e1, e2, …): every object of base
// gets _score (its previous _score plus the score of each argument) and
// the objects are sorted by it, highest first. The score of an argument
// follows groq-js: a match scores BM25-like by term frequency, || adds,
// && adds unless a side scores 0, boost(e, n) adds n when e scores, and
// anything else scores 1 when true.
func (t *translator) emitScorePipe(p *syntax.PipeCall, sc *scope) {
	if len(p.Args) == 0 {
		t.fail(CodeParseError, p.Pos, "score() takes at least 1 argument")
		return
	}
	tmp := t.newVar("t")
	v := t.newVar("v")
	inner := sc.nested(v)
	t.w("cel.bind(" + tmp + ", ")
	t.emit(p.Base, sc)
	t.w(", isArray(" + tmp + ") ? scoreSort(" + tmp + ".map(" + v + ", [" + v)
	for _, a := range p.Args {
		t.w(", ")
		t.emitScore(a, inner)
	}
	t.w("])) : null)")
}

func (t *translator) emitScore(n syntax.Node, sc *scope) {
	switch x := n.(type) {
	case *syntax.Binary:
		switch x.Op {
		case syntax.OpMatch:
			t.call("matchScore", sc, x.Left, x.Right)
			return
		case syntax.OpOr:
			t.w("scoreOr(")
			t.emitScore(x.Left, sc)
			t.w(", ")
			t.emitScore(x.Right, sc)
			t.w(")")
			return
		case syntax.OpAnd:
			t.w("scoreAnd(")
			t.emitScore(x.Left, sc)
			t.w(", ")
			t.emitScore(x.Right, sc)
			t.w(")")
			return
		}
	case *syntax.FuncCall:
		if x.Namespace == "global" && x.Name == "boost" && len(x.Args) == 2 {
			t.w("boostScore(")
			t.emitScore(x.Args[0], sc)
			t.w(", ")
			t.emit(x.Args[1], sc)
			t.w(")")
			return
		}
	}
	t.w("(truth(")
	t.emit(n, sc)
	t.w(") ? 1.0 : 0.0)")
}

// celNumber writes a GROQ number as a CEL double literal.
func celNumber(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return `double("Infinity")`
	case math.IsInf(f, -1):
		return `double("-Infinity")`
	case math.IsNaN(f):
		return `double("NaN")`
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

// celString writes s as a CEL string literal.
func celString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r == utf8.RuneError:
			b.WriteString(`\uFFFD`)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
