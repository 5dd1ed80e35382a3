package groq

import (
	"regexp"
	"strings"

	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
)

// The evaluation plan.
//
// CEL plans a compiled program into a tree of interpreter nodes. A call of
// a library function becomes a generic call node that checks the argument
// types against the overload's signature at every call (the "type guard")
// and evaluates both operands of and/or. decorate replaces those nodes, as
// CEL plans them, with nodes of our own (a cel.CustomDecoratorV2):
//
//   - every library call calls the Go implementation directly (the
//     library is declared over dyn: there is nothing to guard);
//   - chains of && and || become one node over all their terms that stops
//     at the first false (true) term, as groq-js does; GROQ's three-valued
//     && and || are associative, so the flattening keeps their value;
//   - get chains with constant keys (a.b.c) walk the Go maps directly and
//     convert only the value they end on; count(a.b) takes the length of
//     the Go slice; identity() is read from the activation;
//   - attrCmp, attrMatch and inPath with a constant specification (which
//     is what the translation emits) are compiled once, at planning: the
//     keys, operator and literal are extracted, the match pattern is
//     tokenized and its terms classified, the path pattern is turned into
//     a prefix test or a regular expression.
//
// Each node keeps CEL's behaviour around it: an error or unknown operand
// is returned as CEL's strict calls do, and when the evaluation tracks its
// cost (a program the static estimate does not bound) every node charges
// CEL's cost tracker as the call it replaces would have. The fast paths
// that read the root document directly (without resolving s0 through the
// activation) are taken only when no tracker is active.

// libraryByOverload maps an overload id (groq_name) to its library entry.
var libraryByOverload = func() map[string]*fnDef {
	m := make(map[string]*fnDef, len(library))
	for i := range library {
		m["groq_"+library[i].name] = &library[i]
	}
	return m
}()

// decorate is the planner decorator; see above.
func decorate(i interpreter.InterpretableV2) (interpreter.InterpretableV2, error) {
	if isVar(i, "identity") {
		return &identityNode{InterpretableV2: i}, nil
	}
	call, ok := i.(interpreter.InterpretableCall)
	if !ok {
		return i, nil
	}
	d, ok := libraryByOverload[call.OverloadID()]
	if !ok {
		return i, nil
	}
	args := call.Args()
	id := i.ID()
	switch d.name {
	case "and", "or":
		n := &logicNode{id: id, and: d.name == "and", overload: call.OverloadID()}
		for _, a := range args {
			if inner, ok := a.(*logicNode); ok && inner.and == n.and {
				n.terms = append(n.terms, inner.terms...)
			} else {
				n.terms = append(n.terms, a)
			}
		}
		for _, t := range n.terms {
			if rootTermOf(t) != nil {
				n.roots = make([]rootTerm, len(n.terms))
				for i, t := range n.terms {
					n.roots[i] = rootTermOf(t)
				}
				break
			}
		}
		return n, nil
	case "get":
		if key, ok := constString(args[1]); ok {
			n := &getNode{id: id, keys: []string{key}}
			if inner, ok := args[0].(*getNode); ok {
				n.base = inner.base
				n.keys = append(append([]string(nil), inner.keys...), key)
			} else {
				n.base = args[0]
			}
			n.root = isRootVar(n.base)
			return n, nil
		}
	case "eq", "neq":
		for side := range 2 {
			if g, ok := args[side].(*getNode); ok {
				return &eqNode{id: id, def: d, get: g, other: args[1-side], getFirst: side == 0, neq: d.name == "neq"}, nil
			}
		}
	case "count":
		if g, ok := args[0].(*getNode); ok {
			return &countNode{id: id, get: g}, nil
		}
	case "attrCmp":
		if n, ok := newAttrCmpNode(id, args); ok {
			return n, nil
		}
	case "attrMatch":
		if n, ok := newAttrMatchNode(id, args); ok {
			return n, nil
		}
	case "inPath":
		if p, ok := constString(args[1]); ok {
			n := &inPathNode{id: id, base: args[0], spec: args[1].(interpreter.InterpretableConst).Value(), pattern: compilePathPattern(p)}
			return n, nil
		}
	}
	switch f := d.impl.(type) {
	case func(ref.Val) ref.Val:
		if len(args) == 1 {
			return &unaryNode{id: id, def: d, arg: args[0], impl: f}, nil
		}
	case func(ref.Val, ref.Val) ref.Val:
		if len(args) == 2 {
			return &binaryNode{id: id, def: d, lhs: args[0], rhs: args[1], impl: f, selfCharged: selfCharged[d.name]}, nil
		}
	case func(...ref.Val) ref.Val:
		return &varArgsNode{id: id, def: d, args: args, impl: f}, nil
	}
	return i, nil
}

func constString(i interpreter.InterpretableV2) (string, bool) {
	c, ok := i.(interpreter.InterpretableConst)
	if !ok {
		return "", false
	}
	s, ok := c.Value().(types.String)
	return string(s), ok
}

// isRootVar reports whether i is the variable s0, the root @ (never
// rebound: scope variables are named t1, v2, p3, …).
func isRootVar(i interpreter.InterpretableV2) bool { return isVar(i, "s0") }

// isVar reports whether i reads the variable name of the environment.
func isVar(i interpreter.InterpretableV2, name string) bool {
	a, ok := i.(interpreter.InterpretableAttribute)
	if !ok {
		return false
	}
	ns, ok := a.Attr().(interpreter.NamespacedAttribute)
	if !ok {
		return false
	}
	names := ns.CandidateVariableNames()
	return len(names) == 1 && names[0] == name && len(ns.Qualifiers()) == 0
}

// identityNode reads identity() from the activation directly at the top
// level of an untracked evaluation; elsewhere it is the variable's node.
type identityNode struct {
	interpreter.InterpretableV2
}

func (n *identityNode) Exec(f *interpreter.ExecutionFrame) ref.Val {
	if a, ok := f.Scope().(*activation); ok && f.CostTracker() == nil {
		return a.identity()
	}
	return n.InterpretableV2.Exec(f)
}

// abnormal reports whether v is an error or an unknown, which a strict
// CEL call returns instead of calling its implementation.
func abnormal(v ref.Val) bool {
	switch v.(type) {
	case *types.Err, *types.Unknown:
		return true
	}
	return false
}

// rootThis returns the root @ when it can be read without resolving s0:
// at the top level of an untracked evaluation (not inside a comprehension,
// whose frame has its own scope).
func rootThis(f *interpreter.ExecutionFrame) (ref.Val, bool) {
	if a, ok := f.Scope().(*activation); ok && f.CostTracker() == nil {
		return a.this, true
	}
	return nil, false
}

// evalBase evaluates the base operand of a node, reading the root @
// directly when it is s0.
func evalBase(f *interpreter.ExecutionFrame, base interpreter.InterpretableV2, root bool) ref.Val {
	if root {
		if v, ok := rootThis(f); ok {
			return v
		}
	}
	return base.Exec(f)
}

// activationVar is the name under which the activation resolves itself,
// so that a node evaluated inside a comprehension finds it.
const activationVar = "groq$activation"

func activationOf(f *interpreter.ExecutionFrame) *activation {
	if a, ok := f.Scope().(*activation); ok {
		return a
	}
	if v, ok := f.ResolveName(activationVar); ok {
		if a, ok := v.(*activation); ok {
			return a
		}
	}
	return nil
}

// charge charges c cost units to the evaluation: to CEL's tracker when
// one is active (through the node's overload tracker, which computes the
// same c from the arguments), else to the activation's budget, the part
// of the cost limit that the program's static estimate leaves for the
// work that grows with the document (see Program.budget).
func charge(f *interpreter.ExecutionFrame, call cost.Call, id int64, lhs, rhs, res ref.Val, c uint64) {
	if costs := f.CostTracker(); costs != nil {
		costs.EvalBinary(f, id, call, lhs, rhs, res)
		return
	}
	a := activationOf(f)
	if a == nil {
		panic("groq: evaluation without its activation")
	}
	a.charge(c)
}

// charge charges c cost units to the activation's budget.
func (a *activation) charge(c uint64) {
	if c > a.budget {
		a.budget = 0
		panic(cost.LimitExceededError{Message: "operation cancelled: actual cost limit exceeded"})
	}
	a.budget -= c
}

// ---- generic calls ----

type unaryNode struct {
	id   int64
	def  *fnDef
	arg  interpreter.InterpretableV2
	impl func(ref.Val) ref.Val
}

func (n *unaryNode) ID() int64 { return n.id }
func (n *unaryNode) Eval(a interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(a, n.Exec)
}
func (n *unaryNode) Function() string                    { return n.def.name }
func (n *unaryNode) OverloadID() string                  { return "groq_" + n.def.name }
func (n *unaryNode) Args() []interpreter.InterpretableV2 { return []interpreter.InterpretableV2{n.arg} }
func (n *unaryNode) Exec(f *interpreter.ExecutionFrame) ref.Val {
	v := n.arg.Exec(f)
	if abnormal(v) {
		return v
	}
	res := n.impl(v)
	if costs := f.CostTracker(); costs != nil {
		costs.EvalUnary(f, n.id, n, v, res)
	}
	return res
}

type binaryNode struct {
	id          int64
	def         *fnDef
	lhs, rhs    interpreter.InterpretableV2
	impl        func(ref.Val, ref.Val) ref.Val
	selfCharged bool // charges dynamicCost (attrMatch and inPath not compiled at planning)
}

func (n *binaryNode) ID() int64 { return n.id }
func (n *binaryNode) Eval(a interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(a, n.Exec)
}
func (n *binaryNode) Function() string   { return n.def.name }
func (n *binaryNode) OverloadID() string { return "groq_" + n.def.name }
func (n *binaryNode) Args() []interpreter.InterpretableV2 {
	return []interpreter.InterpretableV2{n.lhs, n.rhs}
}
func (n *binaryNode) Exec(f *interpreter.ExecutionFrame) ref.Val {
	l := n.lhs.Exec(f)
	if abnormal(l) {
		return l
	}
	r := n.rhs.Exec(f)
	if abnormal(r) {
		return r
	}
	if n.selfCharged {
		charge(f, n, n.id, l, r, nil, dynamicCost(n.def.name, l, r))
		return n.impl(l, r)
	}
	res := n.impl(l, r)
	if costs := f.CostTracker(); costs != nil {
		costs.EvalBinary(f, n.id, n, l, r, res)
	}
	return res
}

// selfCharged are the functions whose cost the static estimate counts as
// constant when their specification is a literal, and which charge the
// part that grows with their input at run time (charge).
var selfCharged = map[string]bool{"attrMatch": true, "inPath": true}

// dynamicCost is the cost of a self-charged call: for attrMatch, matching
// the text its keys reach against its pattern; for inPath, matching the
// string against a pattern that needs a regular expression (a prefix
// pattern costs 1). The cost trackers of tracked programs charge match and
// matchScore by the same formula.
func dynamicCost(name string, x, spec ref.Val) uint64 {
	switch name {
	case "attrMatch":
		if _, ok := spec.(traits.Lister); !ok {
			return 1
		}
		var keys []string
		var pattern ref.Val = types.NullValue
		i := 0
		listEach(spec, func(e ref.Val) bool {
			if i == 0 {
				pattern = e
			} else if k, ok := e.(types.String); ok {
				keys = append(keys, string(k))
			}
			i++
			return true
		})
		leaf := walkVals(x, keys)
		terms, _ := gather(pattern, true, nil)
		size := 0
		for _, t := range terms {
			size += len(t)
		}
		return matchCost(textSize(toGo(leaf)), size)
	case "match", "matchScore":
		terms, _ := gather(spec, true, nil)
		size := 0
		for _, t := range terms {
			size += len(t)
		}
		return matchCost(textSize(toGo(x)), size)
	case "inPath":
		p, ok := spec.(types.String)
		if !ok || prefixPattern(string(p)) {
			return 1
		}
		n := 0
		switch v := x.(type) {
		case types.String:
			n = len(v)
		case *pathVal:
			n = len(v.pattern)
		}
		return pathCost(n, len(p))
	}
	return 1
}

type varArgsNode struct {
	id   int64
	def  *fnDef
	args []interpreter.InterpretableV2
	impl func(...ref.Val) ref.Val
}

func (n *varArgsNode) ID() int64 { return n.id }
func (n *varArgsNode) Eval(a interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(a, n.Exec)
}
func (n *varArgsNode) Function() string                    { return n.def.name }
func (n *varArgsNode) OverloadID() string                  { return "groq_" + n.def.name }
func (n *varArgsNode) Args() []interpreter.InterpretableV2 { return n.args }
func (n *varArgsNode) Exec(f *interpreter.ExecutionFrame) ref.Val {
	vals := make([]ref.Val, len(n.args))
	for i, a := range n.args {
		v := a.Exec(f)
		if abnormal(v) {
			return v
		}
		vals[i] = v
	}
	res := n.impl(vals...)
	if costs := f.CostTracker(); costs != nil {
		costs.EvalVarArgs(f, n.id, n, vals, res)
	}
	return res
}

// ---- && and || ----

// logicNode is GROQ's && (and) or || over terms, left to right: false
// (true) at the first false (true) term, else null if a term is not a
// boolean, else true (false).
type logicNode struct {
	id       int64
	and      bool
	overload string
	terms    []interpreter.InterpretableV2
	roots    []rootTerm // the terms that are rootTerms of s0 (nil entries otherwise), or nil
}

// rootTerm is a node on an attribute path of the root @ that can be
// evaluated on the root document's map directly.
type rootTerm interface {
	execRoot(a *activation, m map[string]any) ref.Val
}

// rootTermOf returns t as a rootTerm when its base is s0.
func rootTermOf(t interpreter.InterpretableV2) rootTerm {
	switch n := t.(type) {
	case *attrCmpNode:
		if n.root {
			return n
		}
	case *attrMatchNode:
		if n.root {
			return n
		}
	case *eqNode:
		if other := rootOperand(n.other); n.get.root && other != nil {
			return &rootEq{n: n, other: other}
		}
	case *binaryNode:
		// A comparison of count(a.b) or a.b with a constant (count(tags) > 1).
		if n.selfCharged {
			return nil
		}
		l, r := rootOperand(n.lhs), rootOperand(n.rhs)
		if l != nil && r != nil {
			return &rootBinary{n: n, lhs: l, rhs: r}
		}
	}
	return nil
}

// rootOperand returns a function giving the value of i from the root
// document's map, when i is a constant, or count or get of an attribute
// path of s0.
func rootOperand(i interpreter.InterpretableV2) func(a *activation, m map[string]any) ref.Val {
	switch n := i.(type) {
	case *identityNode:
		return func(a *activation, _ map[string]any) ref.Val { return a.identity() }
	case interpreter.InterpretableConst:
		v := n.Value()
		return func(*activation, map[string]any) ref.Val { return v }
	case *getNode:
		if n.root {
			return func(_ *activation, m map[string]any) ref.Val {
				x, ok := walkMap(m, n.keys)
				if !ok {
					return x.(ref.Val)
				}
				return theAdapter.NativeToValue(x)
			}
		}
	case *countNode:
		if n.get.root {
			count := library[countIndex].impl.(func(ref.Val) ref.Val)
			return func(_ *activation, m map[string]any) ref.Val {
				x, ok := walkMap(m, n.get.keys)
				if !ok {
					return count(x.(ref.Val))
				}
				if l, isList := x.([]any); isList {
					return countVal(len(l))
				}
				return count(theAdapter.NativeToValue(x))
			}
		}
	}
	return nil
}

// rootEq is an eqNode whose other operand is a root operand.
type rootEq struct {
	n     *eqNode
	other func(a *activation, m map[string]any) ref.Val
}

func (e *rootEq) execRoot(a *activation, m map[string]any) ref.Val {
	other := e.other(a, m)
	if abnormal(other) {
		return other
	}
	x, ok := walkMap(m, e.n.get.keys)
	if !ok {
		return types.Bool(equal(x.(ref.Val), other) != e.n.neq)
	}
	if s, isStr := x.(string); isStr {
		o, oStr := other.(types.String)
		return types.Bool((oStr && string(o) == s) != e.n.neq)
	}
	return types.Bool(equal(scalarVal(x), other) != e.n.neq)
}

// rootBinary is a library call of two root operands.
type rootBinary struct {
	n        *binaryNode
	lhs, rhs func(a *activation, m map[string]any) ref.Val
}

func (b *rootBinary) execRoot(a *activation, m map[string]any) ref.Val {
	l := b.lhs(a, m)
	if abnormal(l) {
		return l
	}
	r := b.rhs(a, m)
	if abnormal(r) {
		return r
	}
	return b.n.impl(l, r)
}

func (n *logicNode) ID() int64 { return n.id }
func (n *logicNode) Eval(a interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(a, n.Exec)
}
func (n *logicNode) Function() string {
	if n.and {
		return "and"
	}
	return "or"
}
func (n *logicNode) OverloadID() string                  { return n.overload }
func (n *logicNode) Args() []interpreter.InterpretableV2 { return n.terms }
func (n *logicNode) Exec(f *interpreter.ExecutionFrame) ref.Val {
	stop := types.Bool(!n.and) // false for &&, true for ||
	null := false
	// Terms on attributes of the root document read its map directly at
	// the top level of an untracked evaluation.
	var a *activation
	var m map[string]any
	direct := false
	if n.roots != nil {
		if act, ok := f.Scope().(*activation); ok && f.CostTracker() == nil {
			if o, ok := act.this.(*objVal); ok {
				a, m, direct = act, o.m, true
			}
		}
	}
	for i, t := range n.terms {
		var v ref.Val
		if direct && n.roots[i] != nil {
			v = n.roots[i].execRoot(a, m)
		} else {
			v = t.Exec(f)
		}
		if i > 0 {
			if costs := f.CostTracker(); costs != nil && !abnormal(v) {
				costs.EvalBinary(f, n.id, n, !stop, v, v) // one unit, as each call it replaces
			}
		}
		// A type switch, not v == stop: comparing interfaces costs a call.
		switch b := v.(type) {
		case types.Bool:
			if b == stop {
				return stop
			}
		case *types.Err, *types.Unknown:
			return v
		default:
			null = true
		}
	}
	if null {
		return types.NullValue
	}
	return !stop
}

// ---- attribute paths ----

// getNode is get(…get(base, k1)…, kn) with constant keys.
type getNode struct {
	id   int64
	base interpreter.InterpretableV2
	root bool // base is s0
	keys []string
}

func (n *getNode) ID() int64 { return n.id }
func (n *getNode) Eval(a interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(a, n.Exec)
}
func (n *getNode) Function() string   { return "get" }
func (n *getNode) OverloadID() string { return "groq_get" }
func (n *getNode) Args() []interpreter.InterpretableV2 {
	return []interpreter.InterpretableV2{n.base, interpreter.NewConstValue(n.id, types.String(n.keys[len(n.keys)-1]))}
}
func (n *getNode) Exec(f *interpreter.ExecutionFrame) ref.Val {
	base := evalBase(f, n.base, n.root)
	if abnormal(base) {
		return base
	}
	if costs := f.CostTracker(); costs != nil {
		v := base
		for _, k := range n.keys {
			key := types.String(k)
			next := fnGet(v, key)
			costs.EvalBinary(f, n.id, n, v, key, next)
			v = next
		}
		return v
	}
	x, ok := walk(base, n.keys)
	if !ok {
		return x.(ref.Val)
	}
	return theAdapter.NativeToValue(x)
}

// eqNode is eq or neq of an attribute path and another operand: the
// value the path reaches is compared without converting it when it is a
// string (as in author == identity()).
type eqNode struct {
	id       int64
	def      *fnDef
	get      *getNode
	other    interpreter.InterpretableV2
	getFirst bool // the path is the left operand (evaluation order)
	neq      bool
}

func (n *eqNode) ID() int64                             { return n.id }
func (n *eqNode) Eval(a interpreter.Activation) ref.Val { return interpreter.EvalActivation(a, n.Exec) }
func (n *eqNode) Function() string                      { return n.def.name }
func (n *eqNode) OverloadID() string                    { return "groq_" + n.def.name }
func (n *eqNode) Args() []interpreter.InterpretableV2 {
	if n.getFirst {
		return []interpreter.InterpretableV2{n.get, n.other}
	}
	return []interpreter.InterpretableV2{n.other, n.get}
}
func (n *eqNode) Exec(f *interpreter.ExecutionFrame) ref.Val {
	if f.CostTracker() != nil {
		args := n.Args()
		l := args[0].Exec(f)
		if abnormal(l) {
			return l
		}
		r := args[1].Exec(f)
		if abnormal(r) {
			return r
		}
		res := types.Bool(equal(l, r) != n.neq)
		f.CostTracker().EvalBinary(f, n.id, n, l, r, res)
		return res
	}
	var x any
	var xVal ref.Val
	var other ref.Val
	if !n.getFirst {
		if other = n.other.Exec(f); abnormal(other) {
			return other
		}
	}
	base := evalBase(f, n.get.base, n.get.root)
	if abnormal(base) {
		return base
	}
	x, ok := walk(base, n.get.keys)
	if !ok {
		xVal = x.(ref.Val)
	}
	if n.getFirst {
		if other = n.other.Exec(f); abnormal(other) {
			return other
		}
	}
	if s, isStr := x.(string); isStr && ok {
		o, oStr := other.(types.String)
		return types.Bool((oStr && string(o) == s) != n.neq)
	}
	if ok {
		xVal = scalarVal(x)
	}
	return types.Bool(equal(xVal, other) != n.neq)
}

// countNode is count(get(…)): the length of the array an attribute path
// reaches, without converting the array.
type countNode struct {
	id  int64
	get *getNode
}

func (n *countNode) ID() int64 { return n.id }
func (n *countNode) Eval(a interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(a, n.Exec)
}
func (n *countNode) Function() string                    { return "count" }
func (n *countNode) OverloadID() string                  { return "groq_count" }
func (n *countNode) Args() []interpreter.InterpretableV2 { return []interpreter.InterpretableV2{n.get} }
func (n *countNode) Exec(f *interpreter.ExecutionFrame) ref.Val {
	if f.CostTracker() == nil {
		base := evalBase(f, n.get.base, n.get.root)
		if abnormal(base) {
			return base
		}
		if x, ok := walk(base, n.get.keys); ok {
			if l, isList := x.([]any); isList {
				return countVal(len(l))
			}
		}
	}
	v := n.get.Exec(f)
	if abnormal(v) {
		return v
	}
	res := library[countIndex].impl.(func(ref.Val) ref.Val)(v)
	if costs := f.CostTracker(); costs != nil {
		costs.EvalUnary(f, n.id, n, v, res)
	}
	return res
}

// smallCounts are the counts 0…1023 as CEL values, boxed once: a count
// returned as a fresh types.Double allocates.
var smallCounts = func() []ref.Val {
	out := make([]ref.Val, 1024)
	for i := range out {
		out[i] = types.Double(i)
	}
	return out
}()

func countVal(n int) ref.Val {
	if n < len(smallCounts) {
		return smallCounts[n]
	}
	return types.Double(n)
}

var countIndex = func() int {
	for i, d := range library {
		if d.name == "count" {
			return i
		}
	}
	panic("groq: no count in the library")
}()

// walk follows keys from v as get does. It returns the Go value reached
// (ok) or, when it had to leave the Go maps, the CEL value (a ref.Val,
// !ok).
func walk(v ref.Val, keys []string) (any, bool) {
	o, isObj := v.(*objVal)
	if !isObj {
		return walkVals(v, keys), false
	}
	return walkMap(o.m, keys)
}

// walkMap is walk from the Go map of an object.
func walkMap(m map[string]any, keys []string) (any, bool) {
	for i, k := range keys {
		x, found := m[k]
		if !found {
			return nil, true
		}
		if i == len(keys)-1 {
			return x, true
		}
		next, isMap := x.(map[string]any)
		if !isMap {
			return walkVals(theAdapter.NativeToValue(x), keys[i+1:]), false
		}
		m = next
	}
	return nil, true // no keys: unreachable, the translation emits at least one
}

func walkVals(v ref.Val, keys []string) ref.Val {
	for _, k := range keys {
		v = fnGet(v, types.String(k))
	}
	return v
}

var (
	objectPlaceholder ref.Val = &objVal{}
	arrayPlaceholder          = types.NewDynamicList(theAdapter, []any{})
)

// scalarVal converts a Go value reached by walk for comparison with a
// literal: scalars exactly, objects and arrays as placeholders of their
// type (a literal is never equal or ordered to one), without allocating.
func scalarVal(x any) ref.Val {
	switch x.(type) {
	case map[string]any:
		return objectPlaceholder
	case []any:
		return arrayPlaceholder
	}
	return theAdapter.NativeToValue(x)
}

// ---- attribute comparisons ----

type attrOp uint8

const (
	opDefined attrOp = iota
	opIn
	opEq
	opNeq
	opLt
	opLte
	opGt
	opGte
)

var cmpOps = map[types.String]attrOp{
	"defined": opDefined, "in": opIn, "==": opEq, "!=": opNeq,
	"<": opLt, "<=": opLte, ">": opGt, ">=": opGte,
}

// attrCmpNode is attrCmp(base, [op, literal, key1, …]) with a constant
// specification.
type attrCmpNode struct {
	id   int64
	base interpreter.InterpretableV2
	root bool
	spec ref.Val
	op   attrOp
	lit  ref.Val
	in   []ref.Val // the literal's elements, for in
	keys []string

	// The literal as Go values, for compareGo.
	litStr   string
	litNum   float64
	litIsStr bool
	litIsNum bool
	inStrs   []string  // the string elements of an in literal
	inNums   []float64 // its number elements
}

func newAttrCmpNode(id int64, args []interpreter.InterpretableV2) (*attrCmpNode, bool) {
	c, ok := args[1].(interpreter.InterpretableConst)
	if !ok {
		return nil, false
	}
	l, ok := c.Value().(traits.Lister)
	if !ok {
		return nil, false
	}
	n, _ := l.Size().(types.Int)
	if n < 3 {
		return nil, false
	}
	opName, ok := l.Get(types.Int(0)).(types.String)
	if !ok {
		return nil, false
	}
	op, ok := cmpOps[opName]
	if !ok {
		return nil, false
	}
	node := &attrCmpNode{id: id, base: args[0], root: isRootVar(args[0]), spec: c.Value(), op: op, lit: l.Get(types.Int(1))}
	for i := types.Int(2); i < n; i++ {
		k, ok := l.Get(i).(types.String)
		if !ok {
			return nil, false
		}
		node.keys = append(node.keys, string(k))
	}
	if op == opIn {
		if kindOf(node.lit) != kArray {
			return nil, false
		}
		listEach(node.lit, func(e ref.Val) bool {
			node.in = append(node.in, e)
			if s, ok := e.(types.String); ok {
				node.inStrs = append(node.inStrs, string(s))
			} else if f, ok := num(e); ok {
				node.inNums = append(node.inNums, f)
			}
			return true
		})
	}
	if s, ok := node.lit.(types.String); ok {
		node.litStr, node.litIsStr = string(s), true
	} else if f, ok := num(node.lit); ok {
		node.litNum, node.litIsNum = f, true
	}
	return node, true
}

func (n *attrCmpNode) ID() int64 { return n.id }
func (n *attrCmpNode) Eval(a interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(a, n.Exec)
}
func (n *attrCmpNode) Function() string   { return "attrCmp" }
func (n *attrCmpNode) OverloadID() string { return "groq_attrCmp" }
func (n *attrCmpNode) Args() []interpreter.InterpretableV2 {
	return []interpreter.InterpretableV2{n.base, interpreter.NewConstValue(n.id, n.spec)}
}
func (n *attrCmpNode) Exec(f *interpreter.ExecutionFrame) ref.Val {
	base := evalBase(f, n.base, n.root)
	if abnormal(base) {
		return base
	}
	var res ref.Val
	if x, ok := walk(base, n.keys); !ok {
		res = n.compare(x.(ref.Val))
	} else if r, fast := n.compareGo(x); fast {
		res = r
	} else {
		res = n.compare(scalarVal(x))
	}
	if costs := f.CostTracker(); costs != nil {
		costs.EvalBinary(f, n.id, n, base, n.spec, res)
	}
	return res
}

func (n *attrCmpNode) execRoot(_ *activation, m map[string]any) ref.Val {
	x, ok := walkMap(m, n.keys)
	if !ok {
		return n.compare(x.(ref.Val))
	}
	if r, fast := n.compareGo(x); fast {
		return r
	}
	return n.compare(scalarVal(x))
}

// compareGo is compare for a string or number read from a document,
// without converting it: fast is false for other values.
func (n *attrCmpNode) compareGo(x any) (res ref.Val, fast bool) {
	var c int
	switch x := x.(type) {
	case string:
		switch n.op {
		case opDefined:
			return types.True, true
		case opEq:
			return types.Bool(n.litIsStr && x == n.litStr), true
		case opNeq:
			return types.Bool(!n.litIsStr || x != n.litStr), true
		case opIn:
			for _, s := range n.inStrs {
				if s == x {
					return types.True, true
				}
			}
			return types.False, true
		}
		if !n.litIsStr {
			return types.NullValue, true // a string and a non-string do not compare
		}
		c = compareStrings(x, n.litStr)
	case float64:
		switch n.op {
		case opDefined:
			return types.True, true
		case opEq:
			return types.Bool(n.litIsNum && x == n.litNum), true
		case opNeq:
			return types.Bool(!n.litIsNum || x != n.litNum), true
		case opIn:
			for _, f := range n.inNums {
				if f == x {
					return types.True, true
				}
			}
			return types.False, true
		}
		if !n.litIsNum {
			return types.NullValue, true
		}
		switch {
		case x < n.litNum:
			c = -1
		case x > n.litNum:
			c = 1
		case x == n.litNum:
			c = 0
		default:
			return types.NullValue, true // NaN
		}
	default:
		return nil, false
	}
	switch n.op {
	case opLt:
		return types.Bool(c < 0), true
	case opLte:
		return types.Bool(c <= 0), true
	case opGt:
		return types.Bool(c > 0), true
	}
	return types.Bool(c >= 0), true
}

// compare is fnAttrCmp's comparison with the precomputed operator.
func (n *attrCmpNode) compare(v ref.Val) ref.Val {
	switch n.op {
	case opDefined:
		return types.Bool(kindOf(v) != kNull)
	case opIn:
		for _, e := range n.in {
			if equal(v, e) {
				return types.True
			}
		}
		return types.False
	case opEq:
		return types.Bool(equal(v, n.lit))
	case opNeq:
		return types.Bool(!equal(v, n.lit))
	}
	c, comparable := partialCompare(v, n.lit)
	if !comparable {
		return types.NullValue
	}
	switch n.op {
	case opLt:
		return types.Bool(c < 0)
	case opLte:
		return types.Bool(c <= 0)
	case opGt:
		return types.Bool(c > 0)
	}
	return types.Bool(c >= 0)
}

// ---- match ----

// attrMatchNode is attrMatch(base, [pattern, key1, …]) with a constant
// specification: the pattern is tokenized and its terms classified once.
type attrMatchNode struct {
	id      int64
	base    interpreter.InterpretableV2
	root    bool
	spec    ref.Val
	keys    []string
	pattern *matchPattern
}

func newAttrMatchNode(id int64, args []interpreter.InterpretableV2) (*attrMatchNode, bool) {
	c, ok := args[1].(interpreter.InterpretableConst)
	if !ok {
		return nil, false
	}
	l, ok := c.Value().(traits.Lister)
	if !ok {
		return nil, false
	}
	n, _ := l.Size().(types.Int)
	if n < 2 {
		return nil, false
	}
	node := &attrMatchNode{id: id, base: args[0], root: isRootVar(args[0]), spec: c.Value(), pattern: compileMatchPattern(l.Get(types.Int(0)))}
	for i := types.Int(1); i < n; i++ {
		k, ok := l.Get(i).(types.String)
		if !ok {
			return nil, false
		}
		node.keys = append(node.keys, string(k))
	}
	return node, true
}

func (n *attrMatchNode) ID() int64 { return n.id }
func (n *attrMatchNode) Eval(a interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(a, n.Exec)
}
func (n *attrMatchNode) Function() string   { return "attrMatch" }
func (n *attrMatchNode) OverloadID() string { return "groq_attrMatch" }
func (n *attrMatchNode) Args() []interpreter.InterpretableV2 {
	return []interpreter.InterpretableV2{n.base, interpreter.NewConstValue(n.id, n.spec)}
}
func (n *attrMatchNode) Exec(f *interpreter.ExecutionFrame) ref.Val {
	base := evalBase(f, n.base, n.root)
	if abnormal(base) {
		return base
	}
	x, ok := walk(base, n.keys)
	if !ok {
		x = toGo(x.(ref.Val))
	}
	charge(f, n, n.id, base, n.spec, nil, matchCost(textSize(x), n.pattern.size))
	return types.Bool(n.pattern.match(x))
}

func (n *attrMatchNode) execRoot(a *activation, m map[string]any) ref.Val {
	x, ok := walkMap(m, n.keys)
	if !ok {
		x = toGo(x.(ref.Val))
	}
	a.charge(matchCost(textSize(x), n.pattern.size))
	return types.Bool(n.pattern.match(x))
}

// matchCost is the cost of matching text of textSize bytes against a
// pattern of patternSize bytes: tokenizing the text and comparing every
// token with every term is linear in both.
func matchCost(textSize, patternSize int) uint64 {
	return 1 + uint64(textSize/16)*(1+uint64(patternSize/16))
}

// textSize is the number of bytes match reads from a text value: a
// string, or the strings of an array.
func textSize(x any) int {
	switch x := x.(type) {
	case string:
		return len(x)
	case types.String:
		return len(x)
	case []any:
		n := len(x)
		for _, e := range x {
			switch e := e.(type) {
			case string:
				n += len(e)
			case types.String:
				n += len(e)
			}
		}
		return n
	}
	return 0
}

// matchTerm is one term of a match pattern, classified once.
type matchTerm struct {
	text   string
	kind   uint8  // termExact, termPrefix or termGlob
	prefix string // termPrefix: the term without its final *
	runes  []rune // termGlob: the term's runes
}

const (
	termExact = iota
	termPrefix
	termGlob
)

// matchPattern is a compiled match pattern: its terms, or none when the
// pattern is not a string or an array of strings (nothing matches).
type matchPattern struct {
	terms []matchTerm
	size  int // bytes of the pattern, for its cost
}

func compileMatchPattern(pattern ref.Val) *matchPattern {
	terms, ok := gather(pattern, true, nil)
	p := &matchPattern{}
	if !ok {
		return p
	}
	for _, t := range terms {
		p.size += len(t)
		if len([]rune(t)) > maxTermLength {
			t = string([]rune(t)[:maxTermLength])
		}
		mt := matchTerm{text: t}
		switch {
		case !strings.ContainsAny(t, "*."):
			mt.kind = termExact
		case strings.HasSuffix(t, "*") && !strings.ContainsAny(t[:len(t)-1], "*."):
			mt.kind, mt.prefix = termPrefix, t[:len(t)-1]
		default:
			mt.kind, mt.runes = termGlob, []rune(t)
		}
		p.terms = append(p.terms, mt)
	}
	return p
}

func (t *matchTerm) matches(token string) bool {
	switch t.kind {
	case termExact:
		return strings.EqualFold(t.text, token)
	case termPrefix:
		return foldPrefix(token, t.prefix)
	}
	return termMatchDP(t.runes, []rune(token))
}

// match is fnMatch with this pattern: every term matches a token of the
// text (a string, or the strings of an array).
func (p *matchPattern) match(x any) bool {
	if len(p.terms) == 0 {
		return false
	}
	if len(p.terms) > 64 {
		return fnMatch(theAdapter.NativeToValue(x), p.value()) == types.True
	}
	var hit uint64
	all := uint64(1)<<len(p.terms) - 1
	if len(p.terms) == 64 {
		all = ^uint64(0)
	}
	scan := func(s string) bool {
		s = stripEdgeDots(s)
		start := -1
		for i, r := range s {
			if isTokenSep(r, false) {
				if start >= 0 {
					if hit = p.hits(s[start:i], hit); hit == all {
						return true
					}
					start = -1
				}
			} else if start < 0 {
				start = i
			}
		}
		if start >= 0 {
			hit = p.hits(s[start:], hit)
		}
		return hit == all
	}
	switch x := x.(type) {
	case string:
		return scan(x)
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				ts, isStr := theAdapter.NativeToValue(e).(types.String)
				if !isStr {
					continue
				}
				s = string(ts)
			}
			if scan(s) {
				return true
			}
		}
	}
	return false
}

// hits adds to hit the terms that token matches.
func (p *matchPattern) hits(token string, hit uint64) uint64 {
	for i := range p.terms {
		if hit&(1<<i) == 0 && p.terms[i].matches(token) {
			hit |= 1 << i
		}
	}
	return hit
}

// value is the pattern as a CEL value (its terms), for the general match.
func (p *matchPattern) value() ref.Val {
	terms := make([]any, len(p.terms))
	for i, t := range p.terms {
		terms[i] = t.text
	}
	return types.NewDynamicList(theAdapter, terms)
}

// ---- path ----

// pathPattern is a compiled path pattern.
type pathPattern struct {
	source string // the pattern
	text   string // the prefix or the exact id
	prefix bool   // literal segments ending in .**: a prefix test
	exact  bool   // literal segments only
	re     *regexp.Regexp
}

func compilePathPattern(p string) *pathPattern {
	pp := &pathPattern{source: p, text: p}
	if prefixPattern(p) {
		if prefix, ok := strings.CutSuffix(p, ".**"); ok {
			pp.prefix, pp.text = true, prefix
		} else {
			pp.exact = true
		}
		return pp
	}
	pp.re = pathRegexp(p)
	return pp
}

func (p *pathPattern) match(s string) bool {
	switch {
	case p.prefix:
		return len(s) > len(p.text) && s[len(p.text)] == '.' && strings.HasPrefix(s, p.text)
	case p.exact:
		return s == p.text
	}
	return p.re.MatchString(s)
}

// inPathNode is inPath(x, "pattern") with a constant pattern.
type inPathNode struct {
	id      int64
	base    interpreter.InterpretableV2
	spec    ref.Val
	pattern *pathPattern
}

func (n *inPathNode) ID() int64 { return n.id }
func (n *inPathNode) Eval(a interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(a, n.Exec)
}
func (n *inPathNode) Function() string   { return "inPath" }
func (n *inPathNode) OverloadID() string { return "groq_inPath" }
func (n *inPathNode) Args() []interpreter.InterpretableV2 {
	return []interpreter.InterpretableV2{n.base, interpreter.NewConstValue(n.id, n.spec)}
}
func (n *inPathNode) Exec(f *interpreter.ExecutionFrame) ref.Val {
	v := n.base.Exec(f)
	if abnormal(v) {
		return v
	}
	var s string
	switch x := v.(type) {
	case types.String:
		s = string(x)
	case *pathVal:
		s = x.pattern
	default:
		res := ref.Val(types.NullValue)
		if costs := f.CostTracker(); costs != nil {
			costs.EvalBinary(f, n.id, n, v, n.spec, res)
		}
		return res
	}
	if n.pattern.re != nil {
		charge(f, n, n.id, v, n.spec, nil, pathCost(len(s), len(n.pattern.source)))
		return types.Bool(n.pattern.match(s))
	}
	res := types.Bool(n.pattern.match(s))
	if costs := f.CostTracker(); costs != nil {
		costs.EvalBinary(f, n.id, n, v, n.spec, res)
	}
	return res
}

// pathCost is the cost of matching a string of n bytes against a path
// pattern of p bytes compiled to a regular expression (linear in both).
func pathCost(n, p int) uint64 {
	return 1 + uint64(n/16)*(1+uint64(p/16))
}
