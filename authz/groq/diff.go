package groq

import (
	"fmt"
	"sync"
	"sync/atomic"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/vellum-db/vellum/authz/groq/syntax"
)

// diff::changedAny(before, after, selector) and diff::changedOnly(...).
//
// The selector is not a GROQ value but a pattern of key paths (a.b, a[],
// a[cond], (a, b), a.(b, c), anywhere(cond)). The translator compiles it
// into a selector (its conditions into programs) when the query is
// compiled, registers it under its text and emits the text as a string
// constant: diffAny(before, after, "a.(b, c)"). Conditions inside a
// selector are evaluated with @ = the element and an empty Env: they may
// not use parameters.

func init() {
	// Registered here: the functions compile selectors, which refers back
	// to the library.
	for _, d := range []fnDef{
		{name: "diffAny", arity: 3, impl: fnDiffAny, heavy: true},
		{name: "diffOnly", arity: 3, impl: fnDiffOnly, heavy: true},
	} {
		library = append(library, d)
		heavyOverloads["groq_"+d.name] = true
	}
}

type keyPath []any // string keys and float64 indexes

type selector struct {
	node  syntax.Node
	conds map[syntax.Node]*Program
}

var (
	selectors  sync.Map // text → *selector
	selectorsN atomic.Int64
)

const maxSelectors = 4096

// compileSelector compiles the selector node of a diff function of query.
func (t *translator) compileSelector(n syntax.Node) (string, bool) {
	sel := &selector{node: n, conds: map[syntax.Node]*Program{}}
	ok := true
	var walk func(n syntax.Node)
	compileCond := func(c syntax.Node) {
		if !ok {
			return
		}
		sub := &translator{query: t.query, mode: t.mode}
		sub.emit(c, &scope{names: []string{"s0", "doc"}})
		if sub.err != nil {
			t.err, ok = sub.err, false
			return
		}
		if len(sub.params) > 0 {
			t.fail(CodeNotSupported, sub.params[0].pos, "parameters are not supported inside a diff selector")
			ok = false
			return
		}
		p, err := build(t.query, ModeQuery, sub.sb.String(), nil)
		if err != nil {
			t.err, ok = err.(*Error), false
			return
		}
		sel.conds[c] = p
	}
	walk = func(n syntax.Node) {
		switch x := n.(type) {
		case *syntax.Group:
			walk(x.Expr)
		case *syntax.Tuple:
			for _, m := range x.Members {
				walk(m)
			}
		case *syntax.Attribute:
			walk(x.Base)
		case *syntax.ArrayPostfix:
			walk(x.Base)
		case *syntax.Filter:
			walk(x.Base)
			compileCond(x.Cond)
		case *syntax.Nested:
			walk(x.Base)
			walk(x.Inner)
		case *syntax.FuncCall:
			if x.Name == "anywhere" && len(x.Args) == 1 {
				compileCond(x.Args[0])
				return
			}
			t.fail(CodeParseError, x.Pos, "invalid selector")
			ok = false
		case *syntax.ThisAttribute:
		default:
			t.fail(CodeParseError, n.Span(), "invalid selector: expected attributes, a.b, a[], a[filter], (a, b), a.(b, c) or anywhere(expr)")
			ok = false
		}
	}
	walk(n)
	if !ok || t.err != nil {
		return "", false
	}
	sp := n.Span()
	text := t.query[sp.Start:sp.End]
	key := fmt.Sprintf("%d:%s", t.mode, text)
	if _, loaded := selectors.Load(key); !loaded && selectorsN.Load() < maxSelectors {
		selectorsN.Add(1)
		selectors.Store(key, sel)
	}
	return key, true
}

// lookupSelector returns the selector registered under key, compiling it
// again when the registry was full.
func lookupSelector(key string) (*selector, bool) {
	if s, ok := selectors.Load(key); ok {
		return s.(*selector), true
	}
	var mode Mode
	var text string
	if _, err := fmt.Sscanf(key, "%d:", &mode); err != nil {
		return nil, false
	}
	for i := range key {
		if key[i] == ':' {
			text = key[i+1:]
			break
		}
	}
	q := "diff::changedAny({}, {}, " + text + ")"
	tree, err := syntax.Parse(q)
	if err != nil {
		return nil, false
	}
	f, ok := tree.(*syntax.FuncCall)
	if !ok || len(f.Args) != 3 {
		return nil, false
	}
	t := &translator{query: q, mode: mode}
	if _, ok := t.compileSelector(f.Args[2]); !ok {
		return nil, false
	}
	s, ok := selectors.Load(fmt.Sprintf("%d:%s", mode, q[f.Args[2].Span().Start:f.Args[2].Span().End]))
	if !ok {
		return nil, false
	}
	return s.(*selector), true
}

func (s *selector) cond(c syntax.Node, v any) bool {
	p := s.conds[c]
	if p == nil {
		return false
	}
	r, err := p.eval(&Env{}, types.NullValue, theAdapter.NativeToValue(v), nil)
	return err == nil && r == types.True
}

// paths evaluates the selector n over value.
func (s *selector) paths(n syntax.Node, value any, depth int) []keyPath {
	if depth > 2*syntax.MaxDepth {
		return nil
	}
	switch x := n.(type) {
	case *syntax.Group:
		return s.paths(x.Expr, value, depth+1)
	case *syntax.Tuple:
		var out []keyPath
		for _, m := range x.Members {
			out = append(out, s.paths(m, value, depth+1)...)
		}
		return out
	case *syntax.ThisAttribute:
		return []keyPath{{x.Name}}
	case *syntax.Attribute:
		var out []keyPath
		for _, p := range s.paths(x.Base, value, depth+1) {
			out = append(out, extend(p, x.Name))
		}
		return out
	case *syntax.ArrayPostfix, *syntax.Filter:
		var base syntax.Node
		var cond syntax.Node
		if f, ok := x.(*syntax.Filter); ok {
			base, cond = f.Base, f.Cond
		} else {
			base = x.(*syntax.ArrayPostfix).Base
		}
		var out []keyPath
		for _, p := range s.paths(base, value, depth+1) {
			arr, ok := valueAtPath(value, p).([]any)
			if !ok {
				continue
			}
			for i, item := range arr {
				if cond == nil || s.cond(cond, item) {
					out = append(out, extend(p, float64(i)))
				}
			}
		}
		return out
	case *syntax.FuncCall:
		var out []keyPath
		s.anywhere(x.Args[0], value, nil, &out, depth+1)
		return out
	case *syntax.Nested:
		var out []keyPath
		for _, p := range s.paths(x.Base, value, depth+1) {
			inner := valueAtPath(value, p)
			for _, q := range s.paths(x.Inner, inner, depth+1) {
				out = append(out, append(append(keyPath{}, p...), q...))
			}
		}
		return out
	}
	return nil
}

func (s *selector) anywhere(cond syntax.Node, value any, base keyPath, out *[]keyPath, depth int) {
	if depth > 4*syntax.MaxDepth {
		return
	}
	switch v := value.(type) {
	case []any:
		for i, e := range v {
			s.anywhere(cond, e, extend(base, float64(i)), out, depth+1)
		}
	case map[string]any:
		if s.cond(cond, v) {
			*out = append(*out, append(keyPath{}, base...))
		}
		for k, e := range v {
			s.anywhere(cond, e, extend(base, k), out, depth+1)
		}
	}
}

func extend(p keyPath, part any) keyPath {
	q := make(keyPath, len(p), len(p)+1)
	copy(q, p)
	return append(q, part)
}

func valueAtPath(v any, p keyPath) any {
	for _, part := range p {
		switch k := part.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case float64:
			a, ok := v.([]any)
			if !ok || k < 0 || int(k) >= len(a) {
				return nil
			}
			v = a[int(k)]
		}
	}
	return v
}

func deepEqual(a, b any) bool {
	switch a := a.(type) {
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !deepEqual(a[i], bl[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			w, ok := bm[k]
			if !ok || !deepEqual(v, w) {
				return false
			}
		}
		return true
	case dateTime:
		bd, ok := b.(dateTime)
		return ok && a.t.Equal(bd.t)
	}
	return a == b
}

func fnDiffAny(args ...ref.Val) ref.Val {
	sel, ok := lookupSelector(string(args[2].(types.String)))
	if !ok {
		return types.NewErr("diff selector could not be compiled")
	}
	before, after := toGo(args[0]), toGo(args[1])
	bp := sel.paths(sel.node, before, 0)
	ap := sel.paths(sel.node, after, 0)
	if len(bp) != len(ap) {
		return types.True
	}
	for _, p := range bp {
		for i, part := range p {
			if _, isIndex := part.(float64); isIndex {
				ba, ok1 := valueAtPath(before, p[:i]).([]any)
				aa, ok2 := valueAtPath(after, p[:i]).([]any)
				if !ok1 || !ok2 || len(ba) != len(aa) {
					return types.True
				}
			}
		}
		if !deepEqual(valueAtPath(before, p), valueAtPath(after, p)) {
			return types.True
		}
	}
	return types.False
}

func fnDiffOnly(args ...ref.Val) ref.Val {
	sel, ok := lookupSelector(string(args[2].(types.String)))
	if !ok {
		return types.NewErr("diff selector could not be compiled")
	}
	before, after := toGo(args[0]), toGo(args[1])
	selected := sel.paths(sel.node, before, 0)
	only := true
	diffPaths(before, after, nil, func(d keyPath) bool {
		for _, s := range selected {
			if hasPrefix(d, s) {
				return true
			}
		}
		only = false
		return false
	})
	return types.Bool(only)
}

// diffPaths calls f with each key path at which a and b differ (stopping
// when f returns false).
func diffPaths(a, b any, p keyPath, f func(keyPath) bool) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		for k, av := range am {
			if !diffPaths(av, bm[k], extend(p, k), f) {
				return false
			}
		}
		for k, bv := range bm {
			if _, ok := am[k]; !ok {
				if !diffPaths(nil, bv, extend(p, k), f) {
					return false
				}
			}
		}
		return true
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok && len(al) == len(bl) {
		for i := range al {
			if !diffPaths(al[i], bl[i], extend(p, float64(i)), f) {
				return false
			}
		}
		return true
	}
	if deepEqual(a, b) {
		return true
	}
	return f(p)
}

func hasPrefix(p, prefix keyPath) bool {
	if len(prefix) > len(p) {
		return false
	}
	for i := range prefix {
		if p[i] != prefix[i] {
			return false
		}
	}
	return true
}
