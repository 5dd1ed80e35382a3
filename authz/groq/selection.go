package groq

import (
	"errors"
	"fmt"
	"iter"
	"math"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/vellum-db/vellum/authz/groq/syntax"
)

// Selection is a compiled document selection: *[filter], optionally
// followed by | order(...), a slice or an index, and an attribute such as
// ._id. The engine uses it for delete and patch by query. It is safe for
// concurrent use.
type Selection struct {
	query  string
	filter *Program // the filter, with @ = the document (CEL variable doc)
	order  *Program // the sort keys as a list, or nil
	desc   []bool
	slice  *syntax.Slice   // or nil
	lo, hi *Program        // slice bounds
	index  *syntax.Element // or nil
	attr   string          // "" when the selection ends with the documents
}

// Attribute returns the attribute the selection ends with ("_id" for
// *[…]._id), or "" when there is none. Select returns whole documents
// either way.
func (s *Selection) Attribute() string { return s.attr }

// Filter returns the compiled filter.
func (s *Selection) Filter() *Program { return s.filter }

// CompileSelection compiles a selection query. Queries of another shape
// are a queryNotSupported error; syntax errors are queryParseError.
func CompileSelection(query string) (*Selection, error) {
	if v, ok := selCache.get(cacheKey{modeSelection, query}); ok {
		return v.(*Selection), nil
	}
	s, err := compileSelection(query)
	if err != nil {
		return nil, err
	}
	selCache.put(cacheKey{modeSelection, query}, s)
	return s, nil
}

const modeSelection Mode = 100

var selCache = newLRU(CacheSize)

func compileSelection(query string) (*Selection, error) {
	tree, err := syntax.Parse(query)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			return nil, &Error{Code: CodeParseError, Description: se.Description, Start: se.Start, End: se.End, Query: query}
		}
		return nil, &Error{Code: CodeParseError, Description: err.Error(), Query: query}
	}
	notSel := func(n syntax.Node, why string) error {
		sp := n.Span()
		return &Error{
			Code:        CodeNotSupported,
			Description: "not a document selection (*[filter] with optional | order(...), slice or index, and attribute): " + why,
			Start:       syntax.CharOffset(query, sp.Start),
			End:         syntax.CharOffset(query, sp.End),
			Query:       query,
		}
	}
	s := &Selection{query: query}
	n := tree
	if a, ok := n.(*syntax.Attribute); ok {
		s.attr = a.Name
		n = a.Base
	}
	switch x := n.(type) {
	case *syntax.Slice:
		s.slice = x
		n = x.Base
	case *syntax.Element:
		s.index = x
		n = x.Base
	}
	var pipe *syntax.PipeCall
	if p, ok := n.(*syntax.PipeCall); ok {
		if p.Name != "order" {
			return nil, notSel(p, "only order() may follow the filter")
		}
		pipe = p
		n = p.Base
	}
	f, ok := n.(*syntax.Filter)
	if !ok {
		return nil, notSel(n, "expected *[filter]")
	}
	if _, ok := f.Base.(*syntax.Everything); !ok {
		return nil, notSel(f.Base, "expected * before the filter")
	}
	docScope := &scope{names: []string{"s0", "doc"}}
	compileIn := func(sc *scope, emit func(t *translator)) (*Program, error) {
		t := &translator{query: query, mode: ModeQuery}
		emit(t)
		if t.err != nil {
			return nil, t.err
		}
		return build(query, ModeQuery, t.sb.String(), t.params)
	}
	s.filter, err = compileIn(docScope, func(t *translator) { t.emit(f.Cond, docScope) })
	if err != nil {
		return nil, err
	}
	if pipe != nil {
		s.order, err = compileIn(docScope, func(t *translator) {
			t.w("[")
			for i, a := range pipe.Args {
				if i > 0 {
					t.w(", ")
				}
				desc := false
				switch x := a.(type) {
				case *syntax.Asc:
					a = x.Expr
				case *syntax.Desc:
					a, desc = x.Expr, true
				}
				s.desc = append(s.desc, desc)
				t.emitDyn(a, docScope)
			}
			t.w("]")
		})
		if err != nil {
			return nil, err
		}
	}
	if s.slice != nil {
		root := &scope{names: []string{"s0"}}
		if s.lo, err = compileIn(root, func(t *translator) { t.emit(s.slice.Low, root) }); err != nil {
			return nil, err
		}
		if s.hi, err = compileIn(root, func(t *translator) { t.emit(s.slice.High, root) }); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Select returns the documents of docs the selection selects, ordered and
// sliced as the query says.
func (s *Selection) Select(env *Env, docs iter.Seq[map[string]any]) ([]map[string]any, error) {
	if env == nil {
		env = &emptyEnv
	}
	type row struct {
		doc  map[string]any
		keys []ref.Val
	}
	for _, p := range []*Program{s.filter, s.order, s.lo, s.hi} {
		if p != nil {
			if err := p.checkParams(env); err != nil {
				return nil, err
			}
		}
	}
	var rows []row
	for d := range docs {
		wrapped := theAdapter.NativeToValue(d)
		v, err := s.filter.evalChecked(env, types.NullValue, wrapped, nil)
		if err != nil {
			return nil, err
		}
		if v != types.True {
			continue
		}
		r := row{doc: d}
		if s.order != nil {
			kv, err := s.order.evalChecked(env, types.NullValue, wrapped, nil)
			if err != nil {
				return nil, err
			}
			listEach(kv, func(k ref.Val) bool { r.keys = append(r.keys, k); return true })
		}
		rows = append(rows, r)
		// An unordered index or slice needs only a prefix of the documents.
		if s.order == nil && s.index != nil && s.index.Value >= 0 && float64(len(rows)) > s.index.Value {
			break
		}
	}
	if s.order != nil {
		sortStable(len(rows), func(i, j int) bool {
			for k := range s.desc {
				c := totalCompare(rows[i].keys[k], rows[j].keys[k])
				if s.desc[k] {
					c = -c
				}
				if c != 0 {
					return c < 0
				}
			}
			return false
		}, func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	}
	lo, hi := 0, len(rows)
	switch {
	case s.index != nil:
		i := s.index.Value
		if i < 0 {
			i += float64(len(rows))
		}
		if i < 0 || i >= float64(len(rows)) || i != math.Trunc(i) {
			return nil, nil
		}
		lo, hi = int(i), int(i)+1
	case s.slice != nil:
		l, err := s.bound(env, s.lo)
		if err != nil {
			return nil, err
		}
		h, err := s.bound(env, s.hi)
		if err != nil {
			return nil, err
		}
		n := float64(len(rows))
		if l < 0 {
			l += n
		}
		if h < 0 {
			h += n
		}
		if !s.slice.Exclusive {
			h++
		}
		l = math.Max(0, math.Min(l, n))
		h = math.Max(0, math.Min(h, n))
		if h <= l {
			return nil, nil
		}
		lo, hi = int(l), int(h)
	}
	out := make([]map[string]any, 0, hi-lo)
	for _, r := range rows[lo:hi] {
		out = append(out, r.doc)
	}
	return out, nil
}

func (s *Selection) bound(env *Env, p *Program) (float64, error) {
	v, err := p.eval(env, types.NullValue, nil, nil)
	if err != nil {
		return 0, err
	}
	f, ok := num(v)
	if !ok {
		return 0, &Error{Code: CodeEvalError, Description: fmt.Sprintf("slice bound is %s, not a number", kindName(kindOf(v))), Query: s.query}
	}
	return math.Trunc(f), nil
}

func kindName(k kind) string {
	return [...]string{"null", "a boolean", "a number", "a string", "an array", "an object", "a datetime", "a path"}[k]
}
