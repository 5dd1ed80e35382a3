package groq

import (
	"container/list"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/vellum-db/vellum/authz/groq/syntax"
)

// Mode says what a compiled expression may use.
type Mode int

const (
	// ModeQuery accepts any GROQ expression; * is Env.Dataset.
	ModeQuery Mode = iota
	// ModeFilter is for grant and listener filters: a pure function of one
	// document (plus Env.Identity, Env.Now and Env.Params). Constructs that
	// need other documents (*, ->, ^ and so subqueries) and pipe functions
	// are rejected at compile time with an invalidFilter error.
	ModeFilter
)

func (m Mode) String() string {
	if m == ModeFilter {
		return "filter"
	}
	return "query"
}

// Error codes.
const (
	CodeParseError    = "queryParseError"
	CodeInvalidFilter = "invalidFilter"
	CodeEvalError     = "queryEvalError"
	CodeNotSupported  = "queryNotSupported"
)

// Error is a compile or evaluation error. Start and End are character
// (code point) offsets into Query, End exclusive; both are 0 when the error
// has no position (for example a cost limit exceeded).
type Error struct {
	Code        string // queryParseError, invalidFilter, queryNotSupported or queryEvalError
	Description string
	Start, End  int
	Query       string
}

// ErrorCode returns the stable error code.
func (e *Error) ErrorCode() string { return e.Code }

func (e *Error) Error() string {
	if e.Start == 0 && e.End == 0 {
		return fmt.Sprintf("groq %s: %s", e.Code, e.Description)
	}
	return fmt.Sprintf("groq %s at character %d: %s", e.Code, e.Start, e.Description)
}

// Cost limits: CEL tracks the cost of every evaluation (one unit per
// operation, the library functions charge by the size of their inputs) and
// stops it with a queryEvalError past the limit.
const (
	QueryCostLimit  = 2_000_000
	FilterCostLimit = 1_000_000
)

// Env is what an evaluation sees besides @.
type Env struct {
	Identity string         // identity(); "" means anonymous
	Now      time.Time      // now(); the zero time means the current time at evaluation
	Params   map[string]any // $name
	Dataset  []any          // the documents * ranges over (ModeQuery only)

	once sync.Once // builds idx on first use of ->; Env must not be copied after use
	idx  *refIndex
}

func (e *Env) refs() *refIndex {
	e.once.Do(func() {
		byID := make(map[string]any, len(e.Dataset))
		for _, d := range e.Dataset {
			if m, ok := d.(map[string]any); ok {
				if id, ok := m["_id"].(string); ok {
					if _, dup := byID[id]; !dup {
						byID[id] = m
					}
				}
			}
		}
		e.idx = &refIndex{byID: byID}
	})
	return e.idx
}

// Program is a compiled GROQ expression. It is safe for concurrent use.
type Program struct {
	mode    Mode
	query   string
	cel     string
	prg     cel.Program
	params  []paramRef
	tracked bool // evaluated with runtime cost tracking
	// budget is what an untracked evaluation may charge at run time: the
	// cost limit less the static estimate's maximum (see charge).
	budget uint64
	// root is the root of the plan of an untracked program, executed
	// directly in the activation's own frame (see evalChecked).
	root interpreter.InterpretableV2
}

// CEL returns the CEL source the expression compiles to.
func (p *Program) CEL() string { return p.cel }

// Mode returns the mode the program was compiled in.
func (p *Program) Mode() Mode { return p.mode }

// Params returns the names of the parameters the expression uses.
func (p *Program) Params() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range p.params {
		if !seen[r.name] {
			seen[r.name] = true
			out = append(out, r.name)
		}
	}
	return out
}

var (
	envOnce sync.Once
	celEnv  *cel.Env
	envErr  error
)

// sharedEnv is the one CEL environment every program is compiled in.
func sharedEnv() (*cel.Env, error) {
	envOnce.Do(func() {
		opts := []cel.EnvOption{
			cel.CustomTypeAdapter(theAdapter),
			ext.Bindings(),
			cel.ParserRecursionLimit(4 * syntax.MaxDepth),
			cel.ParserExpressionSizeLimit(1 << 20),
		}
		for _, v := range []string{"s0", "doc", "dataset", "params", "identity", "now", "refs"} {
			opts = append(opts, cel.Variable(v, cel.DynType))
		}
		opts = append(opts, envOptions()...)
		celEnv, envErr = cel.NewEnv(opts...)
	})
	return celEnv, envErr
}

// Compile compiles a GROQ expression in the given mode. Programs are cached
// by (mode, text). The error is an *Error.
func Compile(expr string, mode Mode) (*Program, error) {
	if p, ok := cache.get(cacheKey{mode, expr}); ok {
		return p.(*Program), nil
	}
	p, err := compile(expr, mode, nil)
	if err != nil {
		return nil, err
	}
	cache.put(cacheKey{mode, expr}, p)
	return p, nil
}

// compile parses expr and compiles node (or the whole tree when node is nil).
func compile(expr string, mode Mode, tree syntax.Node) (*Program, error) {
	if tree == nil {
		var err error
		tree, err = syntax.Parse(expr)
		if err != nil {
			var se *syntax.Error
			if errors.As(err, &se) {
				return nil, &Error{Code: CodeParseError, Description: se.Description, Start: se.Start, End: se.End, Query: expr}
			}
			return nil, &Error{Code: CodeParseError, Description: err.Error(), Query: expr}
		}
	}
	tr := &translator{query: expr, mode: mode}
	tr.emit(tree, &scope{names: []string{"s0"}})
	if tr.err != nil {
		return nil, tr.err
	}
	return build(expr, mode, tr.sb.String(), tr.params)
}

// planOwnNodes enables the plan of plan.go; tests turn it off to compare
// with CEL's own plan of the same program.
var planOwnNodes = true

func build(expr string, mode Mode, src string, params []paramRef) (*Program, error) {
	env, err := sharedEnv()
	if err != nil {
		return nil, &Error{Code: CodeParseError, Description: "internal: " + err.Error(), Query: expr}
	}
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, &Error{Code: CodeParseError, Description: "query too complex to compile: " + firstLine(iss.Err().Error()), Query: expr}
	}
	limit := uint64(QueryCostLimit)
	if mode == ModeFilter {
		limit = FilterCostLimit
	}
	// Every evaluation is bounded by the cost limit: statically when CEL's
	// cost estimator proves the worst case is within it, otherwise by
	// runtime cost tracking, which stops the evaluation at the limit.
	// The planner decorates every node after its operands, so the last
	// node the decorator sees is the root of the plan.
	var root interpreter.InterpretableV2
	capture := func(i interpreter.InterpretableV2) (interpreter.InterpretableV2, error) {
		i, err := decorate(i)
		root = i
		return i, err
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if planOwnNodes {
		opts = append(opts, cel.CustomDecoratorV2(capture))
	}
	est, err := env.EstimateCost(ast, estimator{})
	tracked := err != nil || est.Max > limit
	var budget uint64
	if tracked {
		opts = append(opts, cel.CostLimit(limit), cel.CostTrackerOptions(costTrackers()...))
	} else {
		budget = limit - est.Max
	}
	prg, err := env.Program(ast, opts...)
	if err != nil {
		return nil, &Error{Code: CodeParseError, Description: "query too complex to compile: " + firstLine(err.Error()), Query: expr}
	}
	p := &Program{mode: mode, query: expr, cel: src, prg: prg, params: params, tracked: tracked, budget: budget}
	if !tracked && root != nil && root.ID() == ast.NativeRep().Expr().ID() {
		p.root = root
	}
	return p, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// Eval evaluates the expression with @ = this and returns its GROQ value
// as a JSON value (datetimes as RFC 3339 strings, paths as their pattern).
// The value may share maps and slices with this, Env.Dataset and
// Env.Params: treat it as read-only.
func (p *Program) Eval(env *Env, this any) (any, error) {
	v, err := p.eval(env, theAdapter.NativeToValue(this), nil, nil)
	if err != nil {
		return nil, err
	}
	return toJSON(v), nil
}

// Match reports whether the expression yields exactly true for doc.
func (p *Program) Match(env *Env, doc map[string]any) (bool, error) {
	if env == nil {
		env = &emptyEnv
	}
	if len(p.params) > 0 {
		if err := p.checkParams(env); err != nil {
			return false, err
		}
	}
	v, err := p.evalChecked(env, nil, nil, doc)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	return ok && bool(b), nil
}

// activation resolves the variables of the translation lazily.
type activation struct {
	env  *Env
	this ref.Val
	doc  ref.Val
	root objVal

	identStr types.String
	ident    ref.Val

	params, dataset ref.Val // built on first use in an evaluation

	budget uint64 // cost units left for the self-charged calls (charge)

	frame interpreter.ExecutionFrame // the root frame of a direct execution; its scope is the activation
}

// Activations are reused through a sync.Pool (measured faster on this
// machine than an atomic spare slot: locked instructions cost more than
// the pool's per-P cache).
var activations = sync.Pool{New: func() any {
	a := new(activation)
	a.frame.SetScope(a)
	return a
}}

func getActivation() *activation { return activations.Get().(*activation) }

func putActivation(a *activation) {
	a.env, a.this, a.doc, a.root.m, a.params, a.dataset = nil, nil, nil, nil, nil, nil
	activations.Put(a)
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "s0":
		return a.this, true
	case "doc":
		if a.doc == nil {
			return types.NullValue, true
		}
		return a.doc, true
	case "identity":
		return a.identity(), true
	case "now":
		t := a.env.Now
		if t.IsZero() {
			t = time.Now()
		}
		return types.String(t.UTC().Format("2006-01-02T15:04:05.000Z")), true
	case "params":
		if a.params == nil {
			a.params = &objVal{a.env.Params}
		}
		return a.params, true
	case "dataset":
		if a.dataset == nil {
			ds := a.env.Dataset
			if ds == nil {
				ds = []any{}
			}
			a.dataset = types.NewDynamicList(theAdapter, ds)
		}
		return a.dataset, true
	case "refs":
		return a.env.refs(), true
	case activationVar:
		return a, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// identity is identity(). The boxed identity is kept in the pooled
// activation: evaluations for the same identity reuse it.
func (a *activation) identity() ref.Val {
	if a.ident == nil || string(a.identStr) != a.env.Identity {
		a.identStr = types.String(a.env.Identity)
		a.ident = a.identStr
	}
	return a.ident
}

var emptyEnv Env

// eval evaluates with @ = this, or, when this is nil, @ = rootDoc (wrapped
// without allocating, in the pooled activation).
func (p *Program) eval(env *Env, this, doc ref.Val, rootDoc map[string]any) (out ref.Val, err error) {
	if env == nil {
		env = &emptyEnv
	}
	if err := p.checkParams(env); err != nil {
		return nil, err
	}
	return p.evalChecked(env, this, doc, rootDoc)
}

// evalChecked is eval for a caller that has checked the parameters.
func (p *Program) evalChecked(env *Env, this, doc ref.Val, rootDoc map[string]any) (out ref.Val, err error) {
	a := getActivation()
	a.env, a.this, a.doc, a.budget = env, this, doc, p.budget
	if this == nil {
		a.root.m = rootDoc
		a.this = &a.root
		if rootDoc == nil {
			a.this = types.NullValue
		}
	}
	defer func() {
		putActivation(a)
		if r := recover(); r != nil {
			desc := fmt.Sprintf("evaluation failed: %v", r)
			if _, ok := r.(cost.LimitExceededError); ok {
				desc = "evaluation exceeded the cost limit"
			}
			out, err = nil, &Error{Code: CodeEvalError, Description: desc, Query: p.query}
		}
	}()
	var v ref.Val
	var evalErr error
	if p.root != nil {
		// An untracked program needs none of what cel.Program.Eval adds
		// around the plan (cost tracker, observers, default variables,
		// asynchronous calls); its panics are recovered above. The frame's
		// scope is the activation itself, set once.
		v = p.root.Exec(&a.frame)
	} else {
		v, _, evalErr = p.prg.Eval(a)
	}
	if evalErr != nil {
		desc := evalErr.Error()
		if strings.Contains(desc, "cost limit exceeded") {
			desc = "evaluation exceeded the cost limit"
		}
		return nil, &Error{Code: CodeEvalError, Description: desc, Query: p.query}
	}
	if types.IsError(v) {
		return nil, &Error{Code: CodeEvalError, Description: fmt.Sprint(v.Value()), Query: p.query}
	}
	return v, nil
}

// checkParams checks that every parameter the program uses is provided
// and is a JSON value (nil, bool, float64, string, []any, map[string]any;
// other Go numbers are accepted as numbers).
func (p *Program) checkParams(env *Env) error {
	for _, r := range p.params {
		v, ok := env.Params[r.name]
		if !ok {
			// Sanity reports a missing parameter as a query parse error.
			return p.paramError(r, CodeParseError, fmt.Sprintf("param $%s referenced, but not provided", r.name))
		}
		if !jsonModel(v, 0) {
			return p.paramError(r, CodeEvalError, fmt.Sprintf("param $%s is not a JSON value (%T)", r.name, v))
		}
	}
	return nil
}

func (p *Program) paramError(r paramRef, code, desc string) *Error {
	return &Error{
		Code:        code,
		Description: desc,
		Start:       syntax.CharOffset(p.query, r.pos.Start),
		End:         syntax.CharOffset(p.query, r.pos.End),
		Query:       p.query,
	}
}

func jsonModel(v any, depth int) bool {
	if depth > 1000 {
		return false
	}
	switch v := v.(type) {
	case nil, bool, float64, string, int, int64, float32:
		return true
	case []any:
		for _, e := range v {
			if !jsonModel(e, depth+1) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range v {
			if !jsonModel(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// ---- the program cache ----

// CacheSize bounds the number of compiled programs kept.
const CacheSize = 4096

type cacheKey struct {
	mode Mode
	text string
}

type lru struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[cacheKey]*list.Element
}

type lruEntry struct {
	key cacheKey
	v   any
}

func newLRU(max int) *lru {
	return &lru{max: max, ll: list.New(), items: map[cacheKey]*list.Element{}}
}

var cache = newLRU(CacheSize)

func (c *lru) get(k cacheKey) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry).v, true
	}
	return nil, false
}

func (c *lru) put(k cacheKey, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		e.Value.(*lruEntry).v = v
		return
	}
	c.items[k] = c.ll.PushFront(&lruEntry{k, v})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*lruEntry).key)
	}
}

func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
