package authz

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vellum-db/vellum/authz/groq"
)

// An Explanation says why a principal may or may not do an action to a
// document: every grant of the principal, whether it matched and why not.
type Explanation struct {
	Principal  string             `json:"principal"` // as Principal.String
	Identity   string             `json:"identity"`  // the identity id
	Action     Action             `json:"action"`
	ID         string             `json:"id"`
	Permission Permission         `json:"permission"` // the permission the action needs
	Groups     []string           `json:"groups"`     // the groups the principal belongs to
	Allowed    bool               `json:"allowed"`
	Grant      *GrantRef          `json:"grant,omitempty"`  // the grant that allows it
	Reason     string             `json:"reason,omitempty"` // why not, when no grant is to blame (built-in group, invalid group document)
	Grants     []GrantExplanation `json:"grants"`
}

// A GrantExplanation is one grant of the principal and how it fared.
type GrantExplanation struct {
	Group       string       `json:"group"`
	Index       int          `json:"index"`
	Path        string       `json:"path,omitempty"`
	Filter      string       `json:"filter,omitempty"`
	Permissions []Permission `json:"permissions"`
	Matched     bool         `json:"matched"`
	Reason      string       `json:"reason,omitempty"` // why it did not match
}

// Explain explains the decision for pr at time now: action on doc (the
// document as it is; for create, the new document). For update, after is
// the document after the change (nil: unchanged); it is ignored otherwise.
// The decision is the one Checker.Read and Checker.Write make.
func (p *Policy) Explain(pr *Principal, now time.Time, action Action, doc, after map[string]any) (*Explanation, error) {
	if doc == nil {
		return nil, &Error{Code: "documentNotFound", Grant: -1, Description: "explain needs the document: it does not exist"}
	}
	if _, err := ParseAction(string(action)); err != nil {
		return nil, err
	}
	c := p.Checker(pr, now)
	id, _ := doc["_id"].(string)
	var before []map[string]any // the versions a grant must match
	var labels []string
	var perm Permission
	var ref GrantRef
	var err error
	allowed := false
	switch action {
	case ActionRead:
		perm, before, labels = PermRead, []map[string]any{doc}, []string{"the document"}
		ref, allowed = c.Read(doc)
	case ActionCreate:
		perm, before, labels = PermCreate, []map[string]any{doc}, []string{"the new document"}
		ref, err = c.Create(id, doc)
	case ActionUpdate:
		if after == nil {
			after = doc
		}
		perm, before, labels = PermUpdate, []map[string]any{doc, after}, []string{"the document before the change", "the document after the change"}
		ref, err = c.Update(id, doc, after)
	case ActionDelete:
		perm, before, labels = PermUpdate, []map[string]any{doc}, []string{"the document"}
		ref, err = c.Delete(id, doc)
	}
	if action != ActionRead {
		allowed = err == nil
		if IsGroupID(id) {
			perm = PermManage
		}
	}
	x := &Explanation{
		Principal:  c.principal.String(),
		Identity:   c.principal.ID,
		Action:     action,
		ID:         id,
		Permission: perm,
		Groups:     c.set.Groups(),
		Allowed:    allowed,
	}
	if allowed && ref.Group != "" {
		x.Grant = &ref
	}
	for _, rg := range c.set.all {
		g := rg.grant
		e := GrantExplanation{Group: rg.ref.Group, Index: rg.ref.Index, Path: g.Path, Filter: g.Filter, Permissions: g.Permissions}
		e.Reason = whyNot(&c.env, g, perm, id, before, labels)
		e.Matched = e.Reason == ""
		x.Grants = append(x.Grants, e)
	}
	if !allowed && err != nil {
		anyMatched := false
		for _, e := range x.Grants {
			anyMatched = anyMatched || e.Matched
		}
		if anyMatched || IsBuiltinGroup(id) {
			x.Reason = err.Error()
		}
	}
	return x, nil
}

func whyNot(env *groq.Env, g *Grant, perm Permission, id string, versions []map[string]any, labels []string) string {
	if !g.Has(perm) {
		return fmt.Sprintf("it does not give %s", perm)
	}
	if g.filter == nil {
		if !g.path.Match(id) {
			return fmt.Sprintf("path %q does not match %q", g.Path, id)
		}
		return ""
	}
	for i, d := range versions {
		v, err := g.filter.eval(env, d)
		switch {
		case err != nil:
			return fmt.Sprintf("the filter failed on %s: %v", labels[i], err)
		case v == true:
			continue
		case v == false:
			return fmt.Sprintf("the filter is false for %s", labels[i])
		case v == nil:
			return fmt.Sprintf("the filter is null for %s", labels[i])
		default:
			return fmt.Sprintf("the filter is %s, not true, for %s", describe(v), labels[i])
		}
	}
	return ""
}

// String formats x for a terminal: the verdict, the groups and one line per
// grant.
func (x *Explanation) String() string {
	var b strings.Builder
	verb := "may"
	if !x.Allowed {
		verb = "may not"
	}
	fmt.Fprintf(&b, "%s %s %s %q (needs %s)", x.Principal, verb, x.Action, x.ID, x.Permission)
	if x.Grant != nil {
		fmt.Fprintf(&b, ", allowed by %s", x.Grant)
	}
	b.WriteString("\n")
	if x.Reason != "" {
		fmt.Fprintf(&b, "reason: %s\n", x.Reason)
	}
	fmt.Fprintf(&b, "groups: %s\n", strings.Join(x.Groups, ", "))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, e := range x.Grants {
		what := fmt.Sprintf("path %q", e.Path)
		if e.Filter != "" {
			what = fmt.Sprintf("filter %q", e.Filter)
		}
		perms := make([]string, len(e.Permissions))
		for i, p := range e.Permissions {
			perms[i] = string(p)
		}
		verdict := "matches"
		if !e.Matched {
			verdict = "no: " + e.Reason
		}
		fmt.Fprintf(tw, "  %s#%d\t%s\t[%s]\t%s\n", e.Group, e.Index, what, strings.Join(perms, " "), verdict)
	}
	tw.Flush()
	return b.String()
}
