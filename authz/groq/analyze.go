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

// RootAttributes returns the attributes of the root value (the document a
// filter is evaluated on) that n may read, sorted and without duplicates:
// n has the same value on an object holding only these attributes of a
// document as on the whole document. all is true when n may read more than
// named attributes of the root: the root itself (@ at the top scope, a bare
// ... splat), the root from a nested scope (^), other documents (*, ->), or
// a function not known to depend on its arguments alone (references(), for
// one, reads all of @).
func RootAttributes(n syntax.Node) (names []string, all bool) {
	a := rootAttrs{}
	a.visit(n, true)
	if a.all {
		return nil, true
	}
	slices.Sort(a.names)
	return slices.Compact(a.names), false
}

type rootAttrs struct {
	names []string
	all   bool
}

// visit records what n reads of the root; root says whether @ is the root
// in n's scope (and not an element of a filter or projection).
func (a *rootAttrs) visit(n syntax.Node, root bool) {
	if n == nil || a.all {
		return
	}
	switch x := n.(type) {
	case *syntax.ThisAttribute:
		if root {
			a.names = append(a.names, x.Name)
		}
		return
	case *syntax.This:
		a.all = a.all || root
		return
	case *syntax.Attribute:
		if _, this := x.Base.(*syntax.This); this && root {
			a.names = append(a.names, x.Name)
			return
		}
	case *syntax.Filter:
		a.visit(x.Base, root)
		a.visit(x.Cond, false)
		return
	case *syntax.Projection:
		a.visit(x.Base, root)
		a.visit(x.Object, false)
		return
	case *syntax.FuncCall:
		if !argsOnly[x.Namespace][x.Name] {
			a.all = true
			return
		}
	case *syntax.Parent, *syntax.Everything, *syntax.Deref, *syntax.Nested,
		*syntax.PipeCall, *syntax.Query, *syntax.FuncDecl:
		a.all = true
		return
	}
	for _, c := range syntax.Children(n) {
		a.visit(c, root)
	}
}

// argsOnly are the functions whose value depends on their arguments (and
// the identity and time) alone, never on @ unless it is passed.
var argsOnly = map[string]map[string]bool{
	"global": {"coalesce": true, "count": true, "dateTime": true, "defined": true, "identity": true,
		"length": true, "lower": true, "now": true, "path": true, "round": true, "select": true,
		"string": true, "upper": true},
	"string":   {"lower": true, "upper": true, "split": true, "startsWith": true},
	"array":    {"compact": true, "intersects": true, "join": true, "unique": true},
	"math":     {"avg": true, "max": true, "min": true, "sum": true},
	"dateTime": {"now": true},
	"pt":       {"text": true},
	"geo":      {"contains": true, "distance": true, "intersects": true, "latLng": true},
	"sanity":   {"dataset": true, "projectId": true},
}
