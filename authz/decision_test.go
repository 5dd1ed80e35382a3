package authz

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// testNow is the transaction time of the data-driven tests.
var testNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// TestDecisions runs testdata/decisions/*.txt. Commands:
//
//	policy acl=public|private [dataset=NAME] [builtins]
//	    one group document (JSON) per input line; prints the errors of the
//	    documents that do not parse, then the custom groups of the policy
//	    (and the built-in ones with builtins).
//	read|create|delete PRINCIPAL    input: the document
//	update PRINCIPAL                input: the document before, then after
//	explain PRINCIPAL action=A      input: the document [, the document after]
//	group                           input: one group document; prints it parsed or its error
//
// PRINCIPAL is anon, user=ID [groups=(a,b)] [role=R [dataset=D]] or
// token=NAME role=R [dataset=D].
func TestDecisions(t *testing.T) {
	datadriven.Walk(t, "testdata/decisions", func(t *testing.T, path string) {
		var policy *Policy
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "policy":
				var acl, dataset string
				d.ScanArgs(t, "acl", &acl)
				dataset = "blog"
				d.MaybeScanArgs(t, "dataset", &dataset)
				a, err := ParseACL(acl)
				if err != nil {
					t.Fatal(err)
				}
				var docs []map[string]any
				for _, line := range nonEmptyLines(d.Input) {
					docs = append(docs, decodeDoc(t, line))
				}
				var errs []error
				policy, errs = LoadPolicy(dataset, a, docs)
				var b strings.Builder
				for _, err := range errs {
					fmt.Fprintf(&b, "error: %s\n", formatErr(err))
				}
				for _, g := range policy.Groups() {
					if !g.Builtin || d.HasArg("builtins") {
						fmt.Fprintf(&b, "%s\n", formatGroup(g))
					}
				}
				return b.String()
			case "group":
				g, err := ParseGroup(decodeDoc(t, strings.TrimSpace(d.Input)))
				if err != nil {
					return "error: " + formatErr(err) + "\n"
				}
				return formatGroup(g) + "\n"
			case "read", "create", "update", "delete", "explain":
				if policy == nil {
					t.Fatal("no policy yet")
				}
				pr := scanPrincipal(t, d)
				lines := nonEmptyLines(d.Input)
				docs := make([]map[string]any, len(lines))
				for i, l := range lines {
					docs[i] = decodeDoc(t, l)
				}
				c := policy.Checker(pr, testNow)
				id := ""
				if len(docs) > 0 {
					id, _ = docs[0]["_id"].(string)
				}
				switch d.Cmd {
				case "read":
					ref, ok := c.Read(docs[0])
					if !ok {
						return "deny\n"
					}
					return "allow " + ref.String() + "\n"
				case "create":
					return formatWrite(c.Create(id, docs[0]))
				case "delete":
					return formatWrite(c.Delete(id, docs[0]))
				case "update":
					if len(docs) != 2 {
						t.Fatalf("update needs two documents, got %d", len(docs))
					}
					return formatWrite(c.Update(id, docs[0], docs[1]))
				default:
					var action string
					d.ScanArgs(t, "action", &action)
					var after map[string]any
					if len(docs) > 1 {
						after = docs[1]
					}
					x, err := policy.Explain(pr, testNow, Action(action), docs[0], after)
					if err != nil {
						return "error: " + err.Error() + "\n"
					}
					return x.String()
				}
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}

func scanPrincipal(t *testing.T, d *datadriven.TestData) *Principal {
	var role, dataset string
	d.MaybeScanArgs(t, "role", &role)
	d.MaybeScanArgs(t, "dataset", &dataset)
	switch {
	case d.HasArg("anon"):
		return Anonymous()
	case d.HasArg("token"):
		var name string
		d.ScanArgs(t, "token", &name)
		r, err := ParseRole(role)
		if err != nil {
			t.Fatal(err)
		}
		_, tok, err := NewToken(name, r, dataset, testNow)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Principal()
	case d.HasArg("user"):
		pr := &Principal{Authenticated: true}
		d.ScanArgs(t, "user", &pr.ID)
		if arg, ok := d.Arg("groups"); ok {
			pr.Groups = arg.Vals
		}
		if role != "" {
			pr.Roles = []RoleAssignment{{Role: Role(role), Dataset: dataset}}
		}
		return pr
	}
	t.Fatalf("%s: no principal (anon, user=ID or token=NAME)", d.Pos)
	return nil
}

func formatWrite(ref GrantRef, err error) string {
	if err != nil {
		return "error: " + formatErr(err) + "\n"
	}
	return "allow " + ref.String() + "\n"
}

func formatErr(err error) string {
	e, ok := err.(*Error)
	if !ok {
		return fmt.Sprintf("%T %v", err, err)
	}
	var b strings.Builder
	b.WriteString(e.Code)
	if e.ID != "" {
		fmt.Fprintf(&b, " id=%s", e.ID)
	}
	if e.Permission != "" {
		fmt.Fprintf(&b, " permission=%s", e.Permission)
	}
	if e.Grant >= 0 {
		fmt.Fprintf(&b, " grant=%d", e.Grant)
	}
	if e.HasPosition() {
		fmt.Fprintf(&b, " at=%d-%d %q", e.Start, e.End, string([]rune(e.Filter)[e.Start:e.End]))
	}
	fmt.Fprintf(&b, ": %s", e.Description)
	return b.String()
}

func formatGroup(g *Group) string {
	var b strings.Builder
	b.WriteString(g.ID)
	if g.Builtin {
		b.WriteString(" (built in)")
	}
	fmt.Fprintf(&b, " members=%v", g.Members)
	for i, gr := range g.Grants {
		what := "path " + gr.Path
		if gr.Filter != "" {
			what = "filter " + gr.Filter
		}
		fmt.Fprintf(&b, "\n  #%d %s %v", i, what, gr.Permissions)
		if gr.UsesIdentity() {
			b.WriteString(" (uses identity)")
		}
	}
	return b.String()
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func decodeDoc(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad JSON %q: %v", s, err)
	}
	return m
}

func TestShareKey(t *testing.T) {
	policy, errs := LoadPolicy("blog", ACLPublic, []map[string]any{
		{"_id": "_.groups.writers", "_type": GroupType,
			"grants": []any{map[string]any{"filter": "_type == 'post' && author == identity()", "permissions": []any{"read"}}}},
		{"_id": "_.groups.readers", "_type": GroupType, "members": []any{"rita", "rob"},
			"grants": []any{map[string]any{"filter": "_type == 'post'", "permissions": []any{"read"}}}},
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	key := func(p *Principal) string { return policy.Checker(p, testNow).ShareKey() }
	user := func(id string, groups ...string) *Principal {
		return &Principal{ID: id, Authenticated: true, Groups: groups}
	}
	token := func(name string, role Role, dataset string) *Principal {
		return &Principal{ID: "token-" + name, Authenticated: true, Roles: []RoleAssignment{{role, dataset}}}
	}
	tests := []struct {
		a, b *Principal
		same bool
	}{
		{Anonymous(), Anonymous(), true},
		{user("alice", "writers"), user("alice", "writers"), true},
		// The writers' filter calls identity(): each writer decides alone.
		{user("alice", "writers"), user("bob", "writers"), false},
		// The readers' does not: its members share.
		{user("rita"), user("rob"), true},
		{user("rita"), user("rob", "writers"), false},
		// A role for all datasets or for this one is the same role here.
		{token("a", RoleViewer, ""), token("b", RoleViewer, "blog"), true},
		{token("a", RoleViewer, ""), token("b", RoleEditor, ""), false},
		{token("a", RoleViewer, ""), token("b", RoleViewer, "shop"), false},
	}
	for _, tt := range tests {
		if got := key(tt.a) == key(tt.b); got != tt.same {
			t.Errorf("%s and %s share: %v, want %v (%q, %q)", tt.a, tt.b, got, tt.same, key(tt.a), key(tt.b))
		}
	}
	if policy.GrantSet(user("alice", "writers")) != policy.GrantSet(user("bob", "writers")) {
		t.Error("alice and bob have the same groups but not the same *GrantSet")
	}
	if !policy.GrantSet(user("alice", "writers")).UsesIdentity() || policy.GrantSet(user("rita")).UsesIdentity() {
		t.Error("UsesIdentity is wrong")
	}
}
