package syntax

// Children returns the direct children of n in source order. Object entries
// and array elements are children of their Object and Array; a Projection's
// children are its Base and its *Object.
func Children(n Node) []Node {
	switch x := n.(type) {
	case *Group:
		return []Node{x.Expr}
	case *Tuple:
		return x.Members
	case *Array:
		out := make([]Node, len(x.Elements))
		for i, e := range x.Elements {
			out[i] = e
		}
		return out
	case *ArrayElement:
		return []Node{x.Value}
	case *Object:
		return x.Entries
	case *ObjectAttr:
		return []Node{x.Value}
	case *ObjectSplat:
		return []Node{x.Value}
	case *ObjectConditional:
		return []Node{x.Cond, x.Value}
	case *Attribute:
		return []Node{x.Base}
	case *Element:
		return []Node{x.Base, x.Index}
	case *Slice:
		return []Node{x.Base, x.Low, x.High}
	case *Filter:
		return []Node{x.Base, x.Cond}
	case *ArrayPostfix:
		return []Node{x.Base}
	case *Projection:
		return []Node{x.Base, x.Object}
	case *Deref:
		return []Node{x.Base}
	case *Nested:
		return []Node{x.Base, x.Inner}
	case *FuncCall:
		return x.Args
	case *PipeCall:
		return append([]Node{x.Base}, x.Args...)
	case *Asc:
		return []Node{x.Expr}
	case *Desc:
		return []Node{x.Expr}
	case *Pair:
		return []Node{x.Cond, x.Value}
	case *Binary:
		return []Node{x.Left, x.Right}
	case *Unary:
		return []Node{x.Operand}
	case *Range:
		return []Node{x.Low, x.High}
	case *Query:
		out := make([]Node, 0, len(x.Funcs)+1)
		for _, f := range x.Funcs {
			out = append(out, f)
		}
		return append(out, x.Expr)
	case *FuncDecl:
		out := make([]Node, 0, len(x.Params)+1)
		for _, p := range x.Params {
			out = append(out, p)
		}
		return append(out, x.Body)
	}
	return nil
}

// Inspect traverses the tree rooted at n in depth-first order, like
// go/ast.Inspect: it calls f(n), and when f returns true it inspects each
// child of n. The depth of trees from Parse is bounded by MaxDepth.
func Inspect(n Node, f func(Node) bool) {
	if n == nil || !f(n) {
		return
	}
	for _, c := range Children(n) {
		Inspect(c, f)
	}
}
