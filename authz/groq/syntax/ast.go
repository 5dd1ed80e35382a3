package syntax

// This file defines the abstract syntax tree produced by Parse.
//
// The tree is syntactic: every postfix traversal (.a, [0], [cond], {…}, ->,
// []) is one node whose Base is the expression it applies to, exactly as
// written. GROQ's traversal semantics (a chain such as *[cond].a{b} maps over
// the array produced by the filter, see the spec's "Traversal" section) are
// left to the consumer, which can recover the chain by following Base. A
// parenthesised expression is kept as a Group node because parentheses end a
// traversal chain: (a[]).b and a[].b mean different things.
//
// Constructs whose meaning GROQ fixes at parse time are resolved here:
//   - a[e] is an Element when e is a constant number, an Attribute when e is
//     a constant string, a Slice when e is a range, and a Filter otherwise;
//   - bare identifiers are ThisAttribute, except null, true and false;
//   - the key of an object entry written without one ({name}, {a[0]},
//     {a[].b}, {a->}) is computed and stored in ObjectAttr.Key;
//   - function calls without a namespace get Namespace "global";
//   - a | {…} is a Projection, like a{…}.
//
// Check (called by Parse) documents which nodes may appear where; for
// example a Range only on the right of in and Asc/Desc only in order().
//
// Every node's Span holds byte offsets into the query; NewError and
// CharOffset convert them to the character offsets of *Error.

// Span is the position of a node in the query: the half-open range
// [Start, End) of byte offsets into the query string.
type Span struct {
	Start, End int
}

// Node is a node of the syntax tree. Every node has a source span.
type Node interface {
	Span() Span
}

// ---- Literals ----

// Null is the literal null.
type Null struct {
	Pos Span
}

// Bool is the literal true or false.
type Bool struct {
	Pos   Span
	Value bool
}

// Number is a numeric literal (integer, decimal or with exponent), as a
// GROQ (JavaScript) number. Negative numbers are a Unary minus applied to a
// Number.
type Number struct {
	Pos   Span
	Value float64
}

// String is a string literal with its escapes decoded (valid UTF-8).
type String struct {
	Pos   Span
	Value string
}

// ---- Simple expressions ----

// Everything is *, all documents of the dataset.
type Everything struct {
	Pos Span
}

// This is @, the current value of the scope.
type This struct {
	Pos Span
}

// Parent is ^ (Level 1), ^.^ (Level 2) and so on: the value of an enclosing
// scope, Level scopes out.
type Parent struct {
	Pos   Span
	Level int
}

// Param is a query parameter $Name.
type Param struct {
	Pos  Span
	Name string
}

// ThisAttribute is a bare identifier: the attribute Name of @.
type ThisAttribute struct {
	Pos  Span
	Name string
}

// Group is a parenthesised expression (Expr).
type Group struct {
	Pos  Span
	Expr Node
}

// Tuple is a parenthesised, comma-separated list of two or more expressions,
// (a, b). GROQ gives it meaning only inside diff selectors (see Nested);
// elsewhere it parses but has no value.
type Tuple struct {
	Pos     Span
	Members []Node
}

// Array is an array literal [a, ...b, c].
type Array struct {
	Pos      Span
	Elements []*ArrayElement
}

// ArrayElement is one element of an Array. When Splat is true it was written
// ...Value and the elements of Value (an array) are spliced in.
type ArrayElement struct {
	Pos   Span
	Value Node
	Splat bool
}

// Object is an object literal or the body of a projection: {…}.
// Each entry is an *ObjectAttr, *ObjectSplat or *ObjectConditional.
type Object struct {
	Pos     Span
	Entries []Node
}

// ObjectAttr is an object entry "key": Value, or a shorthand entry such as
// name, a[0], a[x > 1]{b} or a[].b whose Key was derived from the
// expression as GROQ (groq-js) does: the bare attribute at the root of the
// traversal chain (a for all of these). A shorthand entry whose key cannot be
// derived, such as a.b, a->b or "a" + "b", is a parse error. Shorthand is true
// for the shorthand form.
type ObjectAttr struct {
	Pos       Span
	Key       string
	Value     Node
	Shorthand bool
}

// ObjectSplat is ...Value in an object: the attributes of Value are copied
// in. A bare ... is a splat of @ and has Value of type *This with an empty
// span at the end of the dots.
type ObjectSplat struct {
	Pos   Span
	Value Node
}

// ObjectConditional is Cond => Value in an object: the attributes of Value
// (an object) are copied in when Cond is true.
type ObjectConditional struct {
	Pos   Span
	Cond  Node
	Value Node
}

// ---- Traversals (postfix operators) ----

// Attribute is Base.Name, or Base["Name"] when the bracket expression is a
// constant string.
type Attribute struct {
	Pos  Span
	Base Node
	Name string
}

// Element is Base[Index] where Index is a constant number expression; Value
// is its value (not necessarily an integer; negative values count from the
// end).
type Element struct {
	Pos   Span
	Base  Node
	Index Node
	Value float64
}

// Slice is Base[Low..High] (inclusive) or Base[Low...High] (Exclusive).
// Low and High are constant number expressions or contain parameters (as in
// [$start...$end]); anything else is a parse error.
type Slice struct {
	Pos       Span
	Base      Node
	Low, High Node
	Exclusive bool
}

// Filter is Base[Cond] where Cond is not a constant number, string or range.
// When Cond is (or contains) a parameter its value decides at evaluation time:
// GROQ implementations that know the parameters at parse time treat a number
// as an element access and a string as an attribute access.
type Filter struct {
	Pos  Span
	Base Node
	Cond Node
}

// ArrayPostfix is Base[]: Base coerced to an array, flattening the traversal.
type ArrayPostfix struct {
	Pos  Span
	Base Node
}

// Projection is Base{…}.
type Projection struct {
	Pos    Span
	Base   Node
	Object *Object
}

// Deref is Base->, the document Base references. Base->name is an Attribute
// whose Base is a Deref.
type Deref struct {
	Pos  Span
	Base Node
}

// Nested is Base.(…), a nested selector (Base.(a, b) or Base.(a)) that is
// valid only inside the selector argument of diff::changedAny and
// diff::changedOnly; Parse rejects it anywhere else. Inner is a *Group or a
// *Tuple.
type Nested struct {
	Pos   Span
	Base  Node
	Inner Node
}

// ---- Calls ----

// FuncCall is Namespace::Name(Args...). Namespace is "global" when the call
// was written without one. select(...) is a FuncCall whose arguments are
// *Pair nodes followed by at most one fallback value.
type FuncCall struct {
	Pos       Span
	Namespace string
	Name      string
	Args      []Node
}

// PipeCall is Base | Name(Args...), the pipe functions order and score.
// The arguments of order may be *Asc or *Desc.
type PipeCall struct {
	Pos  Span
	Base Node
	Name string
	Args []Node
}

// Asc is Expr asc, a sort key in order(...).
type Asc struct {
	Pos  Span
	Expr Node
}

// Desc is Expr desc, a sort key in order(...).
type Desc struct {
	Pos  Span
	Expr Node
}

// Pair is Cond => Value, an argument of select(...).
type Pair struct {
	Pos   Span
	Cond  Node
	Value Node
}

// ---- Operators ----

// Op is a binary or unary operator, spelled as in GROQ.
type Op string

// Operators.
const (
	OpOr    Op = "||"
	OpAnd   Op = "&&"
	OpEq    Op = "=="
	OpNeq   Op = "!="
	OpLt    Op = "<"
	OpLte   Op = "<="
	OpGt    Op = ">"
	OpGte   Op = ">="
	OpIn    Op = "in"
	OpMatch Op = "match"
	OpAdd   Op = "+"
	OpSub   Op = "-"
	OpMul   Op = "*"
	OpDiv   Op = "/"
	OpMod   Op = "%"
	OpPow   Op = "**"
	OpNot   Op = "!" // unary only
)

// Binary is Left Op Right for every binary operator, including the boolean
// && and ||, in and match. The right operand of in may be a *Range.
type Binary struct {
	Pos         Span
	Op          Op
	Left, Right Node
}

// Unary is Op Operand for the prefix operators !, - and +.
type Unary struct {
	Pos     Span
	Op      Op
	Operand Node
}

// Range is Low..High (inclusive) or Low...High (Exclusive). It occurs only as
// the right operand of in, possibly parenthesised (x in (1..5) is a Binary
// whose Right is a Group holding the Range).
type Range struct {
	Pos       Span
	Low, High Node
	Exclusive bool
}

// ---- Custom functions ----

// Query is a query that starts with custom function declarations:
// fn ns::name($p) = body; … Expr. Parse returns a *Query only when there is
// at least one declaration; otherwise it returns the expression itself.
type Query struct {
	Pos   Span
	Funcs []*FuncDecl
	Expr  Node
}

// FuncDecl is a custom function declaration fn Namespace::Name(Params) = Body;
type FuncDecl struct {
	Pos       Span
	Namespace string
	Name      string
	Params    []*Param
	Body      Node
}

// Span methods.

func (n *Null) Span() Span              { return n.Pos }
func (n *Bool) Span() Span              { return n.Pos }
func (n *Number) Span() Span            { return n.Pos }
func (n *String) Span() Span            { return n.Pos }
func (n *Everything) Span() Span        { return n.Pos }
func (n *This) Span() Span              { return n.Pos }
func (n *Parent) Span() Span            { return n.Pos }
func (n *Param) Span() Span             { return n.Pos }
func (n *ThisAttribute) Span() Span     { return n.Pos }
func (n *Group) Span() Span             { return n.Pos }
func (n *Tuple) Span() Span             { return n.Pos }
func (n *Array) Span() Span             { return n.Pos }
func (n *ArrayElement) Span() Span      { return n.Pos }
func (n *Object) Span() Span            { return n.Pos }
func (n *ObjectAttr) Span() Span        { return n.Pos }
func (n *ObjectSplat) Span() Span       { return n.Pos }
func (n *ObjectConditional) Span() Span { return n.Pos }
func (n *Attribute) Span() Span         { return n.Pos }
func (n *Element) Span() Span           { return n.Pos }
func (n *Slice) Span() Span             { return n.Pos }
func (n *Filter) Span() Span            { return n.Pos }
func (n *ArrayPostfix) Span() Span      { return n.Pos }
func (n *Projection) Span() Span        { return n.Pos }
func (n *Deref) Span() Span             { return n.Pos }
func (n *Nested) Span() Span            { return n.Pos }
func (n *FuncCall) Span() Span          { return n.Pos }
func (n *PipeCall) Span() Span          { return n.Pos }
func (n *Asc) Span() Span               { return n.Pos }
func (n *Desc) Span() Span              { return n.Pos }
func (n *Pair) Span() Span              { return n.Pos }
func (n *Binary) Span() Span            { return n.Pos }
func (n *Unary) Span() Span             { return n.Pos }
func (n *Range) Span() Span             { return n.Pos }
func (n *Query) Span() Span             { return n.Pos }
func (n *FuncDecl) Span() Span          { return n.Pos }
