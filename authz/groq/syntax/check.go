package syntax

import (
	"fmt"
	"sort"
)

// Arity is the number of arguments a function accepts: at least Min and at
// most Max, where Max < 0 means no upper bound.
type Arity struct {
	Min, Max int
}

func (a Arity) accepts(n int) bool { return n >= a.Min && (a.Max < 0 || n <= a.Max) }

func (a Arity) String() string {
	switch {
	case a.Min == a.Max:
		return fmt.Sprint(a.Min)
	case a.Max < 0:
		return fmt.Sprintf("at least %d", a.Min)
	}
	return fmt.Sprintf("%d to %d", a.Min, a.Max)
}

func exactly(n int) Arity { return Arity{n, n} }

var anyArity = Arity{0, -1}

// functions is the table of GROQ's built-in functions by namespace and name,
// with their arities: the functions of the GROQ-1.revision1 spec and the
// namespaces Sanity's Content Lake and groq-js 2 define (the same table as
// groq-js's parser uses; the delta-mode functions delta::changedAny,
// delta::changedOnly, before() and after() are not available in queries).
// global::select takes any number of arguments: conditions (Pair) followed by
// at most one fallback value.
var functions = map[string]map[string]Arity{
	"global": {
		"anywhere":   exactly(1),
		"boost":      exactly(2), // only inside score()
		"coalesce":   anyArity,
		"count":      exactly(1),
		"dateTime":   exactly(1),
		"defined":    exactly(1),
		"identity":   exactly(0),
		"length":     exactly(1),
		"lower":      exactly(1),
		"now":        exactly(0),
		"path":       exactly(1),
		"references": {1, -1},
		"round":      {1, 2},
		"select":     anyArity,
		"string":     exactly(1),
		"upper":      exactly(1),
	},
	"string": {
		"lower":      exactly(1),
		"upper":      exactly(1),
		"split":      exactly(2),
		"startsWith": exactly(2),
	},
	"array": {
		"compact":    exactly(1),
		"intersects": exactly(2),
		"join":       exactly(2),
		"unique":     exactly(1),
	},
	"math": {
		"avg": exactly(1),
		"max": exactly(1),
		"min": exactly(1),
		"sum": exactly(1),
	},
	"dateTime": {
		"now": exactly(0),
	},
	"diff": {
		"changedAny":  exactly(3), // third argument is a selector
		"changedOnly": exactly(3), // third argument is a selector
	},
	"delta": {
		"operation": anyArity,
	},
	"pt": {
		"text": exactly(1),
	},
	"geo": {
		"contains":   anyArity,
		"distance":   anyArity,
		"intersects": anyArity,
		"latLng":     anyArity,
	},
	"sanity": {
		"dataset":       anyArity,
		"partOfRelease": exactly(1),
		"projectId":     anyArity,
		"versionOf":     exactly(1),
	},
	"releases": {
		"all": exactly(0),
	},
	"text": {
		"query":              exactly(1),
		"semanticSimilarity": exactly(1),
	},
	"media": {
		"aspect": exactly(2),
	},
	"documents": {
		"get":                                  anyArity,
		"incomingGlobalDocumentReferenceCount": anyArity,
		"incomingRefCount":                     anyArity,
	},
	"user": {
		"attributes": anyArity,
	},
}

// pipeFunctions are the functions that may follow |.
var pipeFunctions = map[string]Arity{
	"order": {1, -1}, // arguments may be Asc or Desc
	"score": {1, -1}, // arguments may call boost()
}

// LookupFunc returns the arity of the built-in function namespace::name
// ("global" for calls written without a namespace).
func LookupFunc(namespace, name string) (Arity, bool) {
	a, ok := functions[namespace][name]
	return a, ok
}

// LookupPipeFunc returns the arity of the pipe function name (order, score).
func LookupPipeFunc(name string) (Arity, bool) {
	a, ok := pipeFunctions[name]
	return a, ok
}

// Check reports the first violation in the tree n (parsed from query) of the
// rules GROQ enforces at parse time; Parse calls it, so trees returned by
// Parse already pass. The rules:
//
//   - every function exists (LookupFunc, or a custom function declared in the
//     query) and gets an accepted number of arguments; pipes call order or
//     score (LookupPipeFunc);
//   - boost() appears only inside the arguments of score();
//   - select() takes conditions (a => b) followed by at most one fallback;
//   - a Pair appears only as an argument of select() (the parser turns pairs
//     in objects into ObjectConditional);
//   - a Range appears only as the right operand of in, possibly in
//     parentheses: x in 1..5, x in (1..5);
//   - the base of score() is *, a Filter, a Slice, an ArrayPostfix or a
//     PipeCall (possibly parenthesised), not an element or a projection;
//   - Asc and Desc appear only as arguments of order();
//   - the third argument of diff::changedAny and diff::changedOnly is a
//     selector (attributes, a.b, a[], a[filter], (a, b), a.(b, c),
//     anywhere(expr)), and Nested appears nowhere else;
//   - custom functions take exactly one parameter, have a body of the form
//     $p{…}, $p->{…}, $p[]{…} or $p[]->{…}, do not use parameters or reach
//     with ^ outside their body's scopes, are declared once and are not
//     recursive;
//   - the tree is at most MaxDepth deep.
func Check(query string, n Node) error {
	c := &checker{query: query}
	if q, ok := n.(*Query); ok {
		if err := c.decls(q); err != nil {
			return err
		}
		n = q.Expr
	}
	if err := c.walk(n, 1, posExpr); err != nil {
		return err
	}
	return nil
}

// position says where a node appears, for the nodes allowed only in some
// places.
type position int

const (
	posExpr      position = iota
	posInRight            // right operand of in: Range allowed
	posSelectArg          // argument of select(): Pair allowed
	posOrderArg           // argument of order(): Asc, Desc allowed
)

type checker struct {
	query   string
	decls_  map[string]*FuncDecl // custom functions by "ns::name"
	inScore int                  // > 0 inside the arguments of score()
	calls   []string             // custom functions called (recorded while checking a body)
}

func (c *checker) errorf(n Node, format string, args ...any) *Error {
	return NewError(c.query, n.Span(), fmt.Sprintf(format, args...))
}

func (c *checker) walkAll(ns []Node, depth int, pos position) *Error {
	for _, n := range ns {
		if err := c.walk(n, depth, pos); err != nil {
			return err
		}
	}
	return nil
}

// walk checks n, found at the given depth and position, and its children.
func (c *checker) walk(n Node, depth int, pos position) *Error {
	if depth > MaxDepth {
		return c.errorf(n, "query is nested too deeply (the limit is %d levels)", MaxDepth)
	}
	d := depth + 1
	switch x := n.(type) {
	case *Null, *Bool, *Number, *String, *Everything, *This, *Parent, *Param, *ThisAttribute:
		return nil
	case *Group:
		if pos == posInRight {
			return c.walk(x.Expr, d, posInRight) // x in (1..5)
		}
		return c.walk(x.Expr, d, posExpr)
	case *Tuple:
		return c.walkAll(x.Members, d, posExpr)
	case *Array:
		for _, e := range x.Elements {
			if err := c.walk(e.Value, d, posExpr); err != nil {
				return err
			}
		}
		return nil
	case *Object:
		return c.object(x, d)
	case *Attribute:
		return c.walk(x.Base, d, posExpr)
	case *Element:
		if err := c.walk(x.Base, d, posExpr); err != nil {
			return err
		}
		return c.walk(x.Index, d, posExpr)
	case *Slice:
		if err := c.walk(x.Base, d, posExpr); err != nil {
			return err
		}
		if err := c.walk(x.Low, d, posExpr); err != nil {
			return err
		}
		return c.walk(x.High, d, posExpr)
	case *Filter:
		if err := c.walk(x.Base, d, posExpr); err != nil {
			return err
		}
		return c.walk(x.Cond, d, posExpr)
	case *ArrayPostfix:
		return c.walk(x.Base, d, posExpr)
	case *Projection:
		if err := c.walk(x.Base, d, posExpr); err != nil {
			return err
		}
		return c.object(x.Object, d)
	case *Deref:
		return c.walk(x.Base, d, posExpr)
	case *Nested:
		return c.errorf(x, "a nested selector .( ) is only allowed in the selector argument of diff::changedAny() and diff::changedOnly()")
	case *FuncCall:
		return c.funcCall(x, d)
	case *PipeCall:
		return c.pipeCall(x, d)
	case *Asc, *Desc:
		if pos != posOrderArg {
			return c.errorf(x, "asc and desc are only allowed as arguments of order()")
		}
		var e Node
		if a, ok := x.(*Asc); ok {
			e = a.Expr
		} else {
			e = x.(*Desc).Expr
		}
		return c.walk(e, d, posExpr)
	case *Pair:
		if pos != posSelectArg {
			return c.errorf(x, "unexpected =>: conditions are only allowed in select() and in objects")
		}
		if err := c.walk(x.Cond, d, posExpr); err != nil {
			return err
		}
		return c.walk(x.Value, d, posExpr)
	case *Binary:
		if err := c.walk(x.Left, d, posExpr); err != nil {
			return err
		}
		rpos := posExpr
		if x.Op == OpIn {
			rpos = posInRight
		}
		return c.walk(x.Right, d, rpos)
	case *Unary:
		return c.walk(x.Operand, d, posExpr)
	case *Range:
		if pos != posInRight {
			return c.errorf(x, "a range is only allowed on the right of in and inside [ ]")
		}
		if err := c.walk(x.Low, d, posExpr); err != nil {
			return err
		}
		return c.walk(x.High, d, posExpr)
	case *Query:
		return c.errorf(x, "function declarations are only allowed at the start of the query")
	case *FuncDecl:
		return c.errorf(x, "function declarations are only allowed at the start of the query")
	case *ArrayElement, *ObjectAttr, *ObjectSplat, *ObjectConditional:
		return c.errorf(n, "%T outside its array or object", n)
	case nil:
		return &Error{Code: CodeParseError, Description: "missing expression", Query: c.query}
	}
	return c.errorf(n, "unknown node type %T", n)
}

func (c *checker) object(o *Object, d int) *Error {
	for _, e := range o.Entries {
		var err *Error
		switch x := e.(type) {
		case *ObjectAttr:
			err = c.walk(x.Value, d, posExpr)
		case *ObjectSplat:
			err = c.walk(x.Value, d, posExpr)
		case *ObjectConditional:
			if err = c.walk(x.Cond, d, posExpr); err == nil {
				err = c.walk(x.Value, d, posExpr)
			}
		default:
			err = c.errorf(e, "%T is not an object entry", e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) funcCall(f *FuncCall, d int) *Error {
	id := f.Namespace + "::" + f.Name
	if decl, ok := c.decls_[id]; ok {
		if len(f.Args) != len(decl.Params) {
			return c.errorf(f, "function %s() takes %d argument(s), got %d", id, len(decl.Params), len(f.Args))
		}
		c.calls = append(c.calls, id)
		return c.walkAll(f.Args, d, posExpr)
	}
	fns, ok := functions[f.Namespace]
	if !ok {
		return c.errorf(f, "unknown function %s(): there is no namespace %q", id, f.Namespace)
	}
	arity, ok := fns[f.Name]
	if !ok {
		return c.errorf(f, "unknown function %s()", id)
	}
	if !arity.accepts(len(f.Args)) {
		return c.errorf(f, "function %s() takes %s argument(s), got %d", id, arity, len(f.Args))
	}
	switch id {
	case "global::boost":
		if c.inScore == 0 {
			return c.errorf(f, "boost() is only allowed inside score()")
		}
	case "global::select":
		for i, a := range f.Args {
			if _, isPair := a.(*Pair); !isPair && i != len(f.Args)-1 {
				return c.errorf(f.Args[i+1], "select() takes conditions (cond => value) followed by at most one fallback value, which must be last")
			}
			if err := c.walk(a, d, posSelectArg); err != nil {
				return err
			}
		}
		return nil
	case "diff::changedAny", "diff::changedOnly":
		if err := c.walkAll(f.Args[:2], d, posExpr); err != nil {
			return err
		}
		return c.selector(f.Args[2], d)
	}
	return c.walkAll(f.Args, d, posExpr)
}

func (c *checker) pipeCall(pc *PipeCall, d int) *Error {
	if err := c.walk(pc.Base, d, posExpr); err != nil {
		return err
	}
	arity, ok := pipeFunctions[pc.Name]
	if !ok {
		return c.errorf(pc, "unknown pipe function %s()", pc.Name)
	}
	if !arity.accepts(len(pc.Args)) {
		return c.errorf(pc, "pipe function %s() takes %s argument(s), got %d", pc.Name, arity, len(pc.Args))
	}
	pos := posExpr
	switch pc.Name {
	case "order":
		pos = posOrderArg
	case "score":
		if !scoreBase(pc.Base) {
			return c.errorf(pc.Base, "score() must follow a selection of documents: *, a filter, a slice, [] or another pipe function")
		}
		c.inScore++
		defer func() { c.inScore-- }()
	}
	return c.walkAll(pc.Args, d, pos)
}

// scoreBase reports whether n can be scored: score() ranks documents, so its
// base must select documents (*, a filter, a slice, [] or a pipe), not a
// single element or a projection.
func scoreBase(n Node) bool {
	for {
		switch x := n.(type) {
		case *Group:
			n = x.Expr
		case *Everything, *Filter, *Slice, *ArrayPostfix, *PipeCall:
			return true
		default:
			return false
		}
	}
}

// selector checks the selector argument of the diff functions.
func (c *checker) selector(n Node, d int) *Error {
	if d > MaxDepth {
		return c.errorf(n, "query is nested too deeply (the limit is %d levels)", MaxDepth)
	}
	switch x := n.(type) {
	case *ThisAttribute:
		return nil
	case *Group:
		return c.selector(x.Expr, d+1)
	case *Tuple:
		for _, m := range x.Members {
			if err := c.selector(m, d+1); err != nil {
				return err
			}
		}
		return nil
	case *Attribute:
		return c.selector(x.Base, d+1)
	case *ArrayPostfix:
		return c.selector(x.Base, d+1)
	case *Filter:
		if err := c.selector(x.Base, d+1); err != nil {
			return err
		}
		return c.walk(x.Cond, d+1, posExpr)
	case *Nested:
		if err := c.selector(x.Base, d+1); err != nil {
			return err
		}
		return c.selector(x.Inner, d+1)
	case *FuncCall:
		if x.Namespace == "global" && x.Name == "anywhere" && len(x.Args) == 1 {
			return c.walk(x.Args[0], d+1, posExpr)
		}
	}
	return c.errorf(n, "invalid selector: expected attributes, a.b, a[], a[filter], (a, b), a.(b, c) or anywhere(expr)")
}

// decls checks the custom function declarations of q.
func (c *checker) decls(q *Query) *Error {
	c.decls_ = make(map[string]*FuncDecl)
	for _, d := range q.Funcs {
		id := d.Namespace + "::" + d.Name
		if _, dup := c.decls_[id]; dup {
			return c.errorf(d, "function %s() is declared twice", id)
		}
		c.decls_[id] = d
	}
	graph := make(map[string][]string)
	for _, d := range q.Funcs {
		id := d.Namespace + "::" + d.Name
		if len(d.Params) != 1 {
			return c.errorf(d, "custom function %s() must have exactly one parameter", id)
		}
		obj, ok := funcBody(d.Body, d.Params[0].Name)
		if !ok {
			return c.errorf(d.Body, "the body of %s() must be a projection of its parameter: $%s{…}, $%[2]s->{…}, $%[2]s[]{…} or $%[2]s[]->{…}", id, d.Params[0].Name)
		}
		if err := c.bodyScope(obj, 0, 1); err != nil {
			return err
		}
		c.calls = nil
		if err := c.walk(d.Body, 1, posExpr); err != nil {
			return err
		}
		graph[id] = c.calls
		c.calls = nil
	}
	// Reject recursion: a cycle in the call graph.
	const (
		unvisited = iota
		active
		done
	)
	state := make(map[string]int)
	var visit func(id string) *Error
	visit = func(id string) *Error {
		state[id] = active
		for _, callee := range graph[id] {
			switch state[callee] {
			case active:
				return c.errorf(c.decls_[callee], "recursive function definition: %s() calls itself through %s()", callee, id)
			case unvisited:
				if err := visit(callee); err != nil {
					return err
				}
			}
		}
		state[id] = done
		return nil
	}
	ids := make([]string, 0, len(graph))
	for id := range graph {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if state[id] == unvisited {
			if err := visit(id); err != nil {
				return err
			}
		}
	}
	return nil
}

// funcBody returns the object of a custom function body of the form
// $p{…}, $p->{…}, $p[]{…} or $p[]->{…}.
func funcBody(body Node, param string) (*Object, bool) {
	pr, ok := body.(*Projection)
	if !ok {
		return nil, false
	}
	base := pr.Base
	if d, ok := base.(*Deref); ok {
		base = d.Base
	}
	if a, ok := base.(*ArrayPostfix); ok {
		base = a.Base
	}
	p, ok := base.(*Param)
	return pr.Object, ok && p.Name == param
}

// bodyScope checks the object of a custom function body: no parameters, and
// ^ must not reach above the body's own scopes. level counts the scopes
// (filters and projections) opened inside the body.
func (c *checker) bodyScope(n Node, level, depth int) *Error {
	if depth > MaxDepth {
		return c.errorf(n, "query is nested too deeply (the limit is %d levels)", MaxDepth)
	}
	switch x := n.(type) {
	case *Param:
		return c.errorf(x, "parameters ($%s) cannot be used inside the projection of a custom function", x.Name)
	case *Parent:
		if x.Level > level {
			return c.errorf(x, "^ reaches outside the custom function (%d level(s) up, %d available)", x.Level, level)
		}
		return nil
	case *Filter:
		if err := c.bodyScope(x.Base, level, depth+1); err != nil {
			return err
		}
		return c.bodyScope(x.Cond, level+1, depth+1)
	case *Projection:
		if err := c.bodyScope(x.Base, level, depth+1); err != nil {
			return err
		}
		return c.bodyScope(x.Object, level+1, depth+1)
	}
	var err *Error
	Inspect(n, func(child Node) bool {
		if err != nil || child == n {
			return child == n
		}
		err = c.bodyScope(child, level, depth+1)
		return false
	})
	return err
}
