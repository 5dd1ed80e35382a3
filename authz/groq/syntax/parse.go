package syntax

import (
	"fmt"
	"math"
)

// MaxDepth is the deepest nesting Parse accepts, counted both as nested
// sub-expressions while parsing (brackets, parentheses, prefix operators) and
// as the depth of the resulting tree (so a chain of 300 || or 300 .a
// traversals is also too deep). Deeper queries are rejected with an *Error
// instead of exhausting the stack.
const MaxDepth = 256

// Binding powers, from the spec's "Precedence and associativity" table
// (higher binds tighter).
const (
	precLowest  = 0
	precPair    = 1  // =>, non-associative
	precOr      = 2  // ||, left
	precAnd     = 3  // &&, left
	precCompare = 4  // == != < <= > >= in match, non-associative; postfix asc desc
	precRange   = 5  // .. ..., non-associative
	precAdd     = 6  // + -, left
	precMul     = 7  // * / %, left
	precNeg     = 8  // prefix -
	precPow     = 9  // **, right
	precPrefix  = 10 // prefix + !
)

// Parse parses a GROQ query (GROQ-1.revision1, plus custom function
// declarations) and returns its syntax tree: the expression, or a *Query when
// the query starts with fn declarations.
//
// Besides the grammar Parse checks what GROQ implementations reject at parse
// time (see Check): unknown functions and wrong arities, => outside select()
// and object literals, ranges outside in and slices, asc and desc outside
// order(), boost() outside score(), slices whose bounds are not constant,
// object entries without a derivable key, diff selector syntax and the rules
// for custom functions. The error is an *Error; Parse never panics.
func Parse(query string) (Node, error) {
	p := &parser{lx: lexer{src: query}, query: query}
	n, err := p.parse()
	if err != nil {
		return nil, err
	}
	if err := Check(query, n); err != nil {
		return nil, err
	}
	return n, nil
}

// parser is a recursive-descent parser with precedence climbing for
// operators. Errors unwind the parse through a panic carrying *Error, which
// parse recovers; no other panic is recovered.
type parser struct {
	lx    lexer
	query string
	buf   [3]token // lookahead; buf[0] is the current token
	nbuf  int      // number of tokens in buf
	depth int
}

// bailout carries a syntax error up the stack.
type bailout struct{ err *Error }

func (p *parser) parse() (n Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bailout)
			if !ok {
				panic(r)
			}
			n, err = nil, b.err
		}
	}()
	return p.query_(), nil
}

// errorf aborts the parse with an error at sp.
func (p *parser) errorf(sp Span, format string, args ...any) {
	panic(bailout{NewError(p.query, sp, fmt.Sprintf(format, args...))})
}

// peek returns the token i (at most 2) positions ahead of the current one.
func (p *parser) peek(i int) token {
	for p.nbuf <= i {
		t, err := p.lx.next()
		if err != nil {
			p.errorf(err.span, "%s", err.msg)
		}
		p.buf[p.nbuf] = t
		p.nbuf++
	}
	return p.buf[i]
}

func (p *parser) tok() token { return p.peek(0) }

// advance consumes the current token and returns it.
func (p *parser) advance() token {
	t := p.peek(0)
	copy(p.buf[:], p.buf[1:p.nbuf])
	p.nbuf--
	return t
}

// is reports whether the current token is the punctuation s.
func (p *parser) is(s string) bool {
	if p.nbuf == 0 {
		p.peek(0)
	}
	t := &p.buf[0]
	return t.kind == tPunct && t.text == s
}

// isIdent reports whether t is the identifier s.
func isIdent(t token, s string) bool { return t.kind == tIdent && t.text == s }

// expect consumes the punctuation s or fails, saying what it was for.
func (p *parser) expect(s, context string) token {
	if !p.is(s) {
		p.errorf(p.tokSpan(), "expected '%s' %s, found %s", s, context, describe(p.tok()))
	}
	return p.advance()
}

func (p *parser) tokSpan() Span {
	t := p.tok()
	return Span{t.start, t.end}
}

// describe names a token for error messages.
func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of query"
	case tIdent:
		return fmt.Sprintf("identifier %q", t.text)
	case tParam:
		return "parameter $" + t.text
	case tNumber:
		return "number " + t.text
	case tString:
		return "string literal"
	}
	return "'" + t.text + "'"
}

// query_ parses Query : FuncDecl* Expression.
func (p *parser) query_() Node {
	var funcs []*FuncDecl
	for isIdent(p.tok(), "fn") && p.peek(1).kind == tIdent && p.peek(2).kind == tPunct && p.peek(2).text == "::" {
		funcs = append(funcs, p.funcDecl())
	}
	e := p.expr(precLowest)
	if t := p.tok(); t.kind != tEOF {
		p.errorf(Span{t.start, t.end}, "unexpected %s after the end of the expression", describe(t))
	}
	if len(funcs) == 0 {
		return e
	}
	return &Query{Pos: Span{funcs[0].Pos.Start, e.Span().End}, Funcs: funcs, Expr: e}
}

// funcDecl parses fn ns::name($param, ...) = body ;
func (p *parser) funcDecl() *FuncDecl {
	start := p.advance().start // fn
	ns := p.advance().text
	p.advance() // ::
	nameTok := p.tok()
	if nameTok.kind != tIdent {
		p.errorf(p.tokSpan(), "expected a function name after %s::, found %s", ns, describe(nameTok))
	}
	p.advance()
	d := &FuncDecl{Namespace: ns, Name: nameTok.text}
	p.expect("(", "after the function name in a declaration")
	for !p.is(")") {
		t := p.tok()
		if t.kind != tParam {
			p.errorf(p.tokSpan(), "expected a $parameter in the declaration of %s::%s, found %s", ns, nameTok.text, describe(t))
		}
		p.advance()
		d.Params = append(d.Params, &Param{Pos: Span{t.start, t.end}, Name: t.text})
		if !p.is(")") {
			p.expect(",", "between function parameters")
		}
	}
	p.advance()
	p.expect("=", "before the body of the function declaration")
	d.Body = p.expr(precLowest)
	end := p.expect(";", "after the body of the function declaration").end
	d.Pos = Span{start, end}
	return d
}

// enter guards the recursion depth.
func (p *parser) enter() {
	p.depth++
	if p.depth > MaxDepth {
		p.errorf(p.tokSpan(), "query is nested too deeply (the limit is %d levels)", MaxDepth)
	}
}

func (p *parser) leave() { p.depth-- }

// opInfo describes an infix operator.
type opInfo struct {
	op    Op
	prec  int
	right bool // right-associative
}

// infix returns the binary operator spelled by t, if any.
func infix(t token) (opInfo, bool) {
	if t.kind == tIdent {
		switch t.text {
		case "in":
			return opInfo{OpIn, precCompare, false}, true
		case "match":
			return opInfo{OpMatch, precCompare, false}, true
		}
		return opInfo{}, false
	}
	if t.kind != tPunct {
		return opInfo{}, false
	}
	switch t.text {
	case "||":
		return opInfo{OpOr, precOr, false}, true
	case "&&":
		return opInfo{OpAnd, precAnd, false}, true
	case "==", "!=", "<", "<=", ">", ">=":
		return opInfo{Op(t.text), precCompare, false}, true
	case "+", "-":
		return opInfo{Op(t.text), precAdd, false}, true
	case "*", "/", "%":
		return opInfo{Op(t.text), precMul, false}, true
	case "**":
		return opInfo{OpPow, precPow, true}, true
	}
	return opInfo{}, false
}

// expr parses an expression whose operators all bind at least as tightly as
// minPrec.
func (p *parser) expr(minPrec int) Node {
	p.enter()
	defer p.leave()
	left := p.unary()
	for {
		t := p.tok()
		switch {
		case t.kind == tPunct && t.text == "=>":
			if minPrec > precPair {
				return left
			}
			p.advance()
			right := p.expr(precPair + 1)
			left = &Pair{Pos: Span{left.Span().Start, right.Span().End}, Cond: left, Value: right}
			if p.is("=>") {
				p.errorf(p.tokSpan(), "=> is non-associative: use parentheses")
			}
		case t.kind == tPunct && (t.text == ".." || t.text == "..."):
			if minPrec > precRange {
				return left
			}
			p.advance()
			right := p.expr(precRange + 1)
			left = &Range{Pos: Span{left.Span().Start, right.Span().End}, Low: left, High: right, Exclusive: t.text == "..."}
			if p.is("..") || p.is("...") {
				p.errorf(p.tokSpan(), "ranges are non-associative: use parentheses")
			}
		case isIdent(t, "asc") || isIdent(t, "desc"):
			if minPrec > precCompare {
				return left
			}
			p.advance()
			sp := Span{left.Span().Start, t.end}
			if t.text == "asc" {
				left = &Asc{Pos: sp, Expr: left}
			} else {
				left = &Desc{Pos: sp, Expr: left}
			}
		default:
			info, ok := infix(t)
			if !ok || info.prec < minPrec {
				return left
			}
			p.advance()
			next := info.prec + 1
			if info.right {
				next = info.prec
			}
			right := p.expr(next)
			left = &Binary{Pos: Span{left.Span().Start, right.Span().End}, Op: info.op, Left: left, Right: right}
			if info.prec == precCompare {
				if next, ok := infix(p.tok()); ok && next.prec == precCompare {
					p.errorf(p.tokSpan(), "comparison operators are non-associative: use parentheses around %s", info.op)
				}
			}
		}
	}
}

// unary parses the prefix operators and then a postfix expression.
func (p *parser) unary() Node {
	t := p.tok()
	if t.kind == tPunct {
		var op Op
		prec := precPrefix
		switch t.text {
		case "!":
			op = OpNot
		case "+":
			op = OpAdd
		case "-":
			op, prec = OpSub, precNeg
		}
		if op != "" {
			p.advance()
			operand := p.expr(prec)
			return &Unary{Pos: Span{t.start, operand.Span().End}, Op: op, Operand: operand}
		}
	}
	return p.postfix(p.primary())
}

// primary parses literals, simple expressions, parentheses, arrays, objects
// and function calls.
func (p *parser) primary() Node {
	t := p.tok()
	sp := Span{t.start, t.end}
	switch t.kind {
	case tNumber:
		p.advance()
		return &Number{Pos: sp, Value: t.num}
	case tString:
		p.advance()
		return &String{Pos: sp, Value: t.text}
	case tParam:
		p.advance()
		return &Param{Pos: sp, Name: t.text}
	case tIdent:
		next := p.peek(1)
		if next.kind == tPunct && (next.text == "(" || next.text == "::") {
			return p.funcCall()
		}
		p.advance()
		switch t.text {
		case "null":
			return &Null{Pos: sp}
		case "true":
			return &Bool{Pos: sp, Value: true}
		case "false":
			return &Bool{Pos: sp, Value: false}
		}
		return &ThisAttribute{Pos: sp, Name: t.text}
	case tPunct:
		switch t.text {
		case "*":
			p.advance()
			return &Everything{Pos: sp}
		case "@":
			p.advance()
			return &This{Pos: sp}
		case "^":
			p.advance()
			n := &Parent{Pos: sp, Level: 1}
			for p.is(".") && p.peek(1).kind == tPunct && p.peek(1).text == "^" {
				p.advance()
				n.Level++
				n.Pos.End = p.advance().end
			}
			return n
		case "(":
			return p.paren()
		case "[":
			return p.array()
		case "{":
			return p.object()
		}
	}
	p.errorf(sp, "unexpected %s, expected an expression", describe(t))
	return nil
}

// paren parses ( Expression ) as a Group and ( Expression , ... ) as a Tuple.
func (p *parser) paren() Node {
	start := p.advance().start
	first := p.expr(precLowest)
	if !p.is(",") {
		end := p.expect(")", "to close the parenthesis").end
		return &Group{Pos: Span{start, end}, Expr: first}
	}
	members := []Node{first}
	for p.is(",") {
		p.advance()
		members = append(members, p.expr(precLowest))
	}
	end := p.expect(")", "to close the tuple").end
	return &Tuple{Pos: Span{start, end}, Members: members}
}

// array parses [ (...? Expression),* ,? ].
func (p *parser) array() Node {
	start := p.advance().start
	a := &Array{}
	for !p.is("]") {
		t := p.tok()
		splat := t.kind == tPunct && t.text == "..."
		if splat {
			p.advance()
		}
		v := p.expr(precLowest)
		a.Elements = append(a.Elements, &ArrayElement{Pos: Span{t.start, v.Span().End}, Value: v, Splat: splat})
		if !p.is("]") {
			p.expect(",", "or ']' after an array element")
		}
	}
	a.Pos = Span{start, p.advance().end}
	return a
}

// object parses { entries ,? }.
func (p *parser) object() *Object {
	start := p.advance().start
	o := &Object{}
	for !p.is("}") {
		o.Entries = append(o.Entries, p.objectEntry())
		if !p.is("}") {
			p.expect(",", "or '}' after an object entry")
		}
	}
	o.Pos = Span{start, p.advance().end}
	return o
}

func (p *parser) objectEntry() Node {
	t := p.tok()
	if t.kind == tString && p.peek(1).kind == tPunct && p.peek(1).text == ":" {
		p.advance()
		p.advance()
		v := p.expr(precLowest)
		return &ObjectAttr{Pos: Span{t.start, v.Span().End}, Key: t.text, Value: v}
	}
	if t.kind == tPunct && t.text == "..." {
		p.advance()
		if p.is(",") || p.is("}") {
			return &ObjectSplat{Pos: Span{t.start, t.end}, Value: &This{Pos: Span{t.end, t.end}}}
		}
		v := p.expr(precLowest)
		return &ObjectSplat{Pos: Span{t.start, v.Span().End}, Value: v}
	}
	e := p.expr(precLowest)
	if pr, ok := e.(*Pair); ok {
		return &ObjectConditional{Pos: pr.Pos, Cond: pr.Cond, Value: pr.Value}
	}
	key, ok := objectKey(e)
	if !ok {
		p.errorf(e.Span(), "cannot determine the key of this object entry: write it as \"key\": expression")
	}
	return &ObjectAttr{Pos: e.Span(), Key: key, Value: e, Shorthand: true}
}

// objectKey derives the key of a shorthand object entry as groq-js does:
// the name of a bare attribute, looking through the bases of traversals; a
// .name access counts only when an array traversal ([], [filter], [a..b])
// precedes it in the same chain, since such an access is mapped over that
// array and the key comes from the array's base.
func objectKey(n Node) (string, bool) {
	for {
		switch x := n.(type) {
		case *ThisAttribute:
			return x.Name, true
		case *Group:
			n = x.Expr
		case *PipeCall:
			n = x.Base
		case *Deref:
			n = x.Base
		case *Projection:
			n = x.Base
		case *Slice:
			n = x.Base
		case *Filter:
			n = x.Base
		case *Element:
			n = x.Base
		case *ArrayPostfix:
			n = x.Base
		case *Attribute:
			arr := arrayTraversalBelow(x.Base)
			if arr == nil {
				return "", false
			}
			n = arr
		default:
			return "", false
		}
	}
}

// arrayTraversalBelow returns the nearest array traversal in the traversal
// chain below n, or nil.
func arrayTraversalBelow(n Node) Node {
	for {
		switch x := n.(type) {
		case *Filter, *Slice, *ArrayPostfix:
			return x
		case *Attribute:
			n = x.Base
		case *Element:
			n = x.Base
		case *Deref:
			n = x.Base
		case *Projection:
			n = x.Base
		default:
			return nil
		}
	}
}

// funcCall parses (namespace ::)? name ( args ).
func (p *parser) funcCall() Node {
	first := p.advance()
	ns, name := "global", first
	if p.is("::") {
		p.advance()
		name = p.tok()
		if name.kind != tIdent {
			p.errorf(p.tokSpan(), "expected a function name after %s::, found %s", first.text, describe(name))
		}
		p.advance()
		ns = first.text
	}
	args, end := p.args(name.text)
	return &FuncCall{Pos: Span{first.start, end}, Namespace: ns, Name: name.text, Args: args}
}

// args parses ( Expression , ... ) and returns the arguments and the end of
// the closing parenthesis.
func (p *parser) args(name string) ([]Node, int) {
	p.expect("(", "after the function name "+name)
	var args []Node
	if !p.is(")") {
		args = append(args, p.expr(precLowest))
		for p.is(",") {
			p.advance()
			args = append(args, p.expr(precLowest))
		}
	}
	return args, p.expect(")", "or ',' after an argument of "+name+"()").end
}

// postfix parses the traversals and pipes that follow a primary expression.
func (p *parser) postfix(base Node) Node {
	for {
		t := p.tok()
		if t.kind != tPunct {
			return base
		}
		start := base.Span().Start
		switch t.text {
		case ".":
			p.advance()
			name := p.tok()
			switch {
			case name.kind == tIdent:
				p.advance()
				base = &Attribute{Pos: Span{start, name.end}, Base: base, Name: name.text}
			case name.kind == tPunct && name.text == "(":
				inner := p.paren()
				base = &Nested{Pos: Span{start, inner.Span().End}, Base: base, Inner: inner}
			default:
				p.errorf(p.tokSpan(), "expected an attribute name after '.', found %s", describe(name))
			}
		case "[":
			base = p.bracket(base)
		case "{":
			obj := p.object()
			base = &Projection{Pos: Span{start, obj.Pos.End}, Base: base, Object: obj}
		case "->":
			p.advance()
			d := &Deref{Pos: Span{start, t.end}, Base: base}
			base = d
			if name := p.tok(); name.kind == tIdent && !isOperatorWord(name.text) {
				p.advance()
				base = &Attribute{Pos: Span{start, name.end}, Base: d, Name: name.text}
			}
		case "|":
			base = p.pipe(base)
		default:
			return base
		}
	}
}

// isOperatorWord reports whether an identifier is an operator keyword, which
// cannot be an attribute name after ->.
func isOperatorWord(s string) bool {
	return s == "in" || s == "match" || s == "asc" || s == "desc"
}

// bracket parses [], [index], ["name"], [low..high] and [filter] after base.
func (p *parser) bracket(base Node) Node {
	p.advance() // [
	start := base.Span().Start
	if p.is("]") {
		return &ArrayPostfix{Pos: Span{start, p.advance().end}, Base: base}
	}
	e := p.expr(precLowest)
	end := p.expect("]", "to close '['").end
	sp := Span{start, end}
	if r, ok := e.(*Range); ok {
		for _, b := range []Node{r.Low, r.High} {
			v, ok := constEval(b)
			if !ok || v.kind != cNumber && v.kind != cUnknown {
				p.errorf(b.Span(), "slice bounds must be constant numbers or parameters")
			}
		}
		return &Slice{Pos: sp, Base: base, Low: r.Low, High: r.High, Exclusive: r.Exclusive}
	}
	if v, ok := constEval(e); ok {
		switch v.kind {
		case cNumber:
			return &Element{Pos: sp, Base: base, Index: e, Value: v.num}
		case cString:
			return &Attribute{Pos: sp, Base: base, Name: v.str}
		}
	}
	return &Filter{Pos: sp, Base: base, Cond: e}
}

// pipe parses | name(args) and | {projection}.
func (p *parser) pipe(base Node) Node {
	p.advance()
	start := base.Span().Start
	if p.is("{") {
		obj := p.object()
		return &Projection{Pos: Span{start, obj.Pos.End}, Base: base, Object: obj}
	}
	t := p.tok()
	if t.kind != tIdent {
		p.errorf(p.tokSpan(), "expected a pipe function or a projection after '|', found %s", describe(t))
	}
	p.advance()
	name := t
	if p.is("::") {
		p.advance()
		name = p.tok()
		if name.kind != tIdent {
			p.errorf(p.tokSpan(), "expected a function name after %s::, found %s", t.text, describe(name))
		}
		if t.text != "global" {
			p.errorf(Span{t.start, name.end}, "unknown pipe function %s::%s()", t.text, name.text)
		}
		p.advance()
	}
	args, end := p.args(name.text)
	return &PipeCall{Pos: Span{start, end}, Base: base, Name: name.text, Args: args}
}

// Constant evaluation, as GROQ uses it to tell element access, attribute
// access and filters apart.

type constKind int

const (
	cNull    constKind = iota
	cNumber            // finite number
	cString            //
	cOther             // a boolean
	cUnknown           // depends on a parameter
)

type constVal struct {
	kind constKind
	num  float64
	str  string
}

// constEval evaluates n when it consists only of literals, parameters,
// parentheses and arithmetic (ok is false otherwise). Values that depend on
// parameters are cUnknown; non-finite numbers become null, as in GROQ.
func constEval(n Node) (constVal, bool) {
	switch x := n.(type) {
	case *Null:
		return constVal{kind: cNull}, true
	case *Bool:
		return constVal{kind: cOther}, true
	case *Number:
		return number(x.Value), true
	case *String:
		return constVal{kind: cString, str: x.Value}, true
	case *Param:
		return constVal{kind: cUnknown}, true
	case *Group:
		return constEval(x.Expr)
	case *Unary:
		if x.Op == OpNot {
			return constVal{}, false
		}
		v, ok := constEval(x.Operand)
		if !ok || v.kind == cUnknown {
			return v, ok
		}
		if v.kind != cNumber {
			return constVal{kind: cNull}, true
		}
		if x.Op == OpSub {
			return number(-v.num), true
		}
		return v, true
	case *Binary:
		switch x.Op {
		case OpAdd, OpSub, OpMul, OpDiv, OpMod, OpPow:
		default:
			return constVal{}, false
		}
		l, ok1 := constEval(x.Left)
		r, ok2 := constEval(x.Right)
		if !ok1 || !ok2 {
			return constVal{}, false
		}
		if l.kind == cUnknown || r.kind == cUnknown {
			return constVal{kind: cUnknown}, true
		}
		if x.Op == OpAdd && l.kind == cString && r.kind == cString {
			return constVal{kind: cString, str: l.str + r.str}, true
		}
		if l.kind != cNumber || r.kind != cNumber {
			return constVal{kind: cNull}, true
		}
		a, b := l.num, r.num
		switch x.Op {
		case OpAdd:
			return number(a + b), true
		case OpSub:
			return number(a - b), true
		case OpMul:
			return number(a * b), true
		case OpDiv:
			return number(a / b), true
		case OpMod:
			return number(math.Mod(a, b)), true
		default:
			return number(math.Pow(a, b)), true
		}
	}
	return constVal{}, false
}

func number(f float64) constVal {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return constVal{kind: cNull}
	}
	return constVal{kind: cNumber, num: f}
}
