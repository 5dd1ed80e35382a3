package authz

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vellum-db/vellum/authz/groq"
	"github.com/vellum-db/vellum/authz/groq/syntax"
)

// A filter is a grant's GROQ filter compiled once (in groq's filter mode: a
// pure function of one document, the identity and the time).
type filter struct {
	src          string
	prog         *groq.Program
	usesIdentity bool
	// types, when not nil, are the only values of _type for which the
	// filter can be true: the filter is a conjunction with a conjunct
	// _type == "T" or _type in ["T", ...]. Checking them first spares the
	// evaluation of most filters of a policy with many types.
	types []string
}

// compileFilter compiles src. Its error has Code queryParseError for a
// syntax error and invalidFilter for a construct filters may not use, with
// Filter, Start and End set; the caller fills in ID and Grant.
func compileFilter(src string) (*filter, *Error) {
	prog, err := groq.Compile(src, groq.ModeFilter)
	if err != nil {
		e := &Error{Code: CodeInvalidFilter, Filter: src, Grant: -1}
		var ge *groq.Error
		if errors.As(err, &ge) {
			if ge.Code == CodeQueryParseError {
				e.Code = CodeQueryParseError
			}
			e.Start, e.End = ge.Start, ge.End
			e.Description = fmt.Sprintf("filter %q is not valid at characters %d to %d: %s", src, ge.Start, ge.End, ge.Description)
		} else {
			e.End = len([]rune(src))
			e.Description = fmt.Sprintf("filter %q is not valid: %v", src, err)
		}
		return nil, e
	}
	f := &filter{src: src, prog: prog, usesIdentity: true}
	if n, err := syntax.Parse(src); err == nil {
		f.usesIdentity = callsIdentity(n)
		f.types, _ = requiredTypes(n)
	}
	return f, nil
}

// callsIdentity reports whether n calls identity(). (If src did not parse,
// which Compile has ruled out, usesIdentity stays true: the answer only
// decides whether a decision may be shared between identities.)
func callsIdentity(n syntax.Node) bool {
	found := false
	syntax.Inspect(n, func(n syntax.Node) bool {
		if c, ok := n.(*syntax.FuncCall); ok && c.Name == "identity" && (c.Namespace == "global" || c.Namespace == "") {
			found = true
		}
		return !found
	})
	return found
}

// requiredTypes returns the _type values n can be true for, when n is a
// conjunction (&&, possibly parenthesised) one of whose conjuncts is
// _type == "T", "T" == _type or _type in ["T", ...]. GROQ's && is false as
// soon as one side is false, and such a conjunct is false (not null) for
// any other _type, missing or not a string; so the filter cannot be true.
func requiredTypes(n syntax.Node) ([]string, bool) {
	switch x := n.(type) {
	case *syntax.Group:
		return requiredTypes(x.Expr)
	case *syntax.Binary:
		switch x.Op {
		case syntax.OpAnd:
			l, lok := requiredTypes(x.Left)
			r, rok := requiredTypes(x.Right)
			switch {
			case lok && rok:
				var both []string
				for _, t := range l {
					if slices.Contains(r, t) {
						both = append(both, t)
					}
				}
				return append([]string{}, both...), true
			case lok:
				return l, true
			case rok:
				return r, true
			}
		case syntax.OpEq:
			if isTypeAttr(x.Left) {
				if s, ok := x.Right.(*syntax.String); ok {
					return []string{s.Value}, true
				}
			}
			if isTypeAttr(x.Right) {
				if s, ok := x.Left.(*syntax.String); ok {
					return []string{s.Value}, true
				}
			}
		case syntax.OpIn:
			arr, ok := x.Right.(*syntax.Array)
			if !isTypeAttr(x.Left) || !ok {
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

// match reports whether the filter is exactly true for doc. An evaluation
// error counts as no match: a grant that cannot be evaluated grants nothing.
func (f *filter) match(env *groq.Env, doc map[string]any) bool {
	if f.types != nil {
		t, ok := doc["_type"].(string)
		if !ok || !slices.Contains(f.types, t) {
			return false
		}
	}
	ok, err := f.prog.Match(env, doc)
	return err == nil && ok
}

// eval returns the filter's value for doc, for explanations.
func (f *filter) eval(env *groq.Env, doc map[string]any) (any, error) {
	return f.prog.Eval(env, doc)
}
