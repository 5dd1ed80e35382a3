package groq

import (
	"slices"

	"github.com/vellum-db/vellum/authz/groq/syntax"
)

// CallsIdentity reports whether n calls identity() (or global::identity()):
// only then can two identities with the same grants get different answers
// from the same filter.
func CallsIdentity(n syntax.Node) bool {
	found := false
	syntax.Inspect(n, func(n syntax.Node) bool {
		if c, ok := n.(*syntax.FuncCall); ok && c.Name == "identity" && (c.Namespace == "global" || c.Namespace == "") {
			found = true
		}
		return !found
	})
	return found
}

// RequiredTypes returns the _type values n can be true for, when n is a
// conjunction (&&, possibly parenthesised) one of whose conjuncts is
// _type == "T", "T" == _type or _type in ["T", ...]. GROQ's && is false as
// soon as one side is false, and such a conjunct is false (not null) for
// any other _type, missing or not a string; so the filter cannot be true.
// ok is false when n has no such conjunct (any type may match).
func RequiredTypes(n syntax.Node) (types []string, ok bool) {
	switch x := n.(type) {
	case *syntax.Group:
		return RequiredTypes(x.Expr)
	case *syntax.Binary:
		switch x.Op {
		case syntax.OpAnd:
			l, lok := RequiredTypes(x.Left)
			r, rok := RequiredTypes(x.Right)
			switch {
			case lok && rok:
				both := []string{}
				for _, t := range l {
					if slices.Contains(r, t) {
						both = append(both, t)
					}
				}
				return both, true
			case lok:
				return l, true
			case rok:
				return r, true
			}
		case syntax.OpEq:
			if s, ok := x.Right.(*syntax.String); ok && isTypeAttr(x.Left) {
				return []string{s.Value}, true
			}
			if s, ok := x.Left.(*syntax.String); ok && isTypeAttr(x.Right) {
				return []string{s.Value}, true
			}
		case syntax.OpIn:
			arr, ok := x.Right.(*syntax.Array)
			if !ok || !isTypeAttr(x.Left) {
				return nil, false
			}
			types := []string{}
			for _, e := range arr.Elements {
				s, ok := e.Value.(*syntax.String)
				if !ok || e.Splat {
					return nil, false
				}
				types = append(types, s.Value)
			}
			return types, true
		}
	}
	return nil, false
}

// isTypeAttr reports whether n is _type or @._type.
func isTypeAttr(n syntax.Node) bool {
	switch x := n.(type) {
	case *syntax.ThisAttribute:
		return x.Name == "_type"
	case *syntax.Attribute:
		_, this := x.Base.(*syntax.This)
		return this && x.Name == "_type"
	}
	return false
}
