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
	// attrs are the document attributes the filter reads, unless
	// wholeDoc: then it may read anything (see groq.RootAttributes).
	attrs    []string
	wholeDoc bool
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
	f := &filter{src: src, prog: prog, usesIdentity: true, wholeDoc: true}
	if n, err := syntax.Parse(src); err == nil {
		f.usesIdentity = groq.CallsIdentity(n)
		f.types, _ = groq.RequiredTypes(n)
		f.attrs, f.wholeDoc = groq.RootAttributes(n)
	}
	return f, nil
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
