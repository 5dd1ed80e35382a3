package authz

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// This file checks decisions against a reference written directly from the
// rules in docs/access-control.md, sharing no code with the implementation
// but the pathRegexp definition of globs (itself checked against Match).

// A refFilter is a grant filter as a tree, with its GROQ text and its value.
type refFilter struct {
	op    string // "type", "status", "me", "defined", "and", "or", "not"
	arg   string
	left  *refFilter
	right *refFilter
}

func (f *refFilter) groq() string {
	switch f.op {
	case "type":
		return fmt.Sprintf("_type == %q", f.arg)
	case "status":
		return fmt.Sprintf("status == %q", f.arg)
	case "me":
		return "author == identity()"
	case "defined":
		return "defined(author)"
	case "and":
		return "(" + f.left.groq() + ") && (" + f.right.groq() + ")"
	case "or":
		return "(" + f.left.groq() + ") || (" + f.right.groq() + ")"
	case "not":
		return "!(" + f.left.groq() + ")"
	}
	panic(f.op)
}

// value is GROQ's three-valued result: true, false or nil (null).
func (f *refFilter) value(doc map[string]any, identity string) any {
	eq := func(a, b any) any { return a == b } // strings or nil: GROQ's == (null == null is true)
	// identity() is the principal's id, and the empty string for everyone
	// (groq.Env.Identity ""), which equals no author.
	me := identity
	switch f.op {
	case "type":
		return eq(doc["_type"], f.arg)
	case "status":
		return eq(doc["status"], f.arg)
	case "me":
		return eq(doc["author"], me)
	case "defined":
		return doc["author"] != nil
	case "and":
		l, r := f.left.value(doc, identity), f.right.value(doc, identity)
		if l == false || r == false {
			return false
		}
		if l == true && r == true {
			return true
		}
		return nil
	case "or":
		l, r := f.left.value(doc, identity), f.right.value(doc, identity)
		if l == true || r == true {
			return true
		}
		if l == false && r == false {
			return false
		}
		return nil
	case "not":
		switch f.left.value(doc, identity) {
		case true:
			return false
		case false:
			return true
		}
		return nil
	}
	panic(f.op)
}

type modelGrant struct {
	path   string // or
	filter *refFilter
	perms  []string
}

type modelGroup struct {
	name    string
	members []string
	grants  []modelGrant
}

type refPrincipal struct {
	id            string
	authenticated bool
	roles         []RoleAssignment
	claims        []string
}

type refWorld struct {
	dataset string
	public  bool
	groups  []modelGroup
}

// builtinRef is the built-in groups, restated from the documentation.
func (w *refWorld) builtinRef() []modelGroup {
	all := "**"
	gs := []modelGroup{
		{name: "administrator", grants: []modelGrant{{path: all, perms: []string{"read", "create", "update", "manage"}}}},
		{name: "editor", grants: []modelGrant{{path: all, perms: []string{"read", "create", "update"}}}},
		{name: "developer", grants: []modelGrant{{path: all, perms: []string{"read", "create", "update"}}}},
		{name: "contributor", grants: []modelGrant{{path: all, perms: []string{"read"}}, {path: "drafts.**", perms: []string{"create", "update"}}}},
		{name: "viewer", grants: []modelGrant{{path: all, perms: []string{"read"}}}},
	}
	public := modelGroup{name: "public", members: []string{"everyone"}}
	if w.public {
		public.grants = []modelGrant{{path: "*", perms: []string{"read"}}}
	}
	return append(gs, public)
}

func (w *refWorld) isMember(g modelGroup, builtin bool, p refPrincipal) bool {
	if slices.Contains(p.claims, g.name) {
		return true
	}
	if slices.Contains(g.members, "everyone") {
		return true
	}
	if p.authenticated && (slices.Contains(g.members, "authenticated") || slices.Contains(g.members, p.id)) {
		return true
	}
	if builtin {
		for _, r := range p.roles {
			if string(r.Role) == g.name && (r.Dataset == "" || r.Dataset == w.dataset) {
				return true
			}
		}
	}
	return false
}

func (g modelGrant) matches(id string, doc map[string]any, identity string) bool {
	if g.filter != nil {
		return g.filter.value(doc, identity) == true
	}
	return id != "" && pathRegexp(g.path).MatchString(id)
}

// allowed is the reference decision; ok reports whether grant ref of the
// implementation is one that allows it.
func (w *refWorld) allowed(p refPrincipal, action Action, id string, before, after map[string]any) (allowed bool, ok func(GrantRef) bool) {
	identity := ""
	if p.authenticated {
		identity = p.id
	}
	type cand struct {
		group string
		index int
		g     modelGrant
	}
	var cands []cand
	for _, g := range w.builtinRef() {
		if w.isMember(g, true, p) {
			for i, gr := range g.grants {
				cands = append(cands, cand{"_.groups." + g.name, i, gr})
			}
		}
	}
	for _, g := range w.groups {
		if w.isMember(g, false, p) {
			for i, gr := range g.grants {
				cands = append(cands, cand{"_.groups." + g.name, i, gr})
			}
		}
	}
	var perm string
	var versions []map[string]any
	switch action {
	case ActionRead:
		perm, versions = "read", []map[string]any{before}
	case ActionCreate:
		perm, versions = "create", []map[string]any{after}
	case ActionUpdate:
		perm, versions = "update", []map[string]any{before, after}
	case ActionDelete:
		perm, versions = "update", []map[string]any{before}
	}
	if action != ActionRead && strings.HasPrefix(id, "_.groups.") {
		name := strings.TrimPrefix(id, "_.groups.")
		for _, b := range w.builtinRef() {
			if b.name == name {
				return false, nil
			}
		}
		perm = "manage"
	}
	good := func(c cand) bool {
		if !slices.Contains(c.g.perms, perm) {
			return false
		}
		for _, v := range versions {
			if !c.g.matches(id, v, identity) {
				return false
			}
		}
		return true
	}
	for _, c := range cands {
		if good(c) {
			return true, func(ref GrantRef) bool {
				for _, c := range cands {
					if c.group == ref.Group && c.index == ref.Index {
						return good(c)
					}
				}
				return false
			}
		}
	}
	return false, nil
}

func TestDecisionsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 2))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	subset := func(xs ...string) []string {
		var out []string
		for _, x := range xs {
			if r.IntN(3) == 0 {
				out = append(out, x)
			}
		}
		return out
	}
	var randFilter func(depth int) *refFilter
	randFilter = func(depth int) *refFilter {
		k := r.IntN(7)
		if depth >= 2 {
			k = r.IntN(4)
		}
		switch k {
		case 0:
			return &refFilter{op: "type", arg: pick("post", "page", "system.group")}
		case 1:
			return &refFilter{op: "status", arg: pick("draft", "published")}
		case 2:
			return &refFilter{op: "me"}
		case 3:
			return &refFilter{op: "defined"}
		case 4:
			return &refFilter{op: "and", left: randFilter(depth + 1), right: randFilter(depth + 1)}
		case 5:
			return &refFilter{op: "or", left: randFilter(depth + 1), right: randFilter(depth + 1)}
		default:
			return &refFilter{op: "not", left: randFilter(depth + 1)}
		}
	}
	ids := []string{"post-1", "post-2", "drafts.post-1", "secret.config", "versions.r1.post-1",
		"_.groups.g0", "_.groups.g9", "_.groups.editor", "_.groups.public"}
	randDoc := func(id string) map[string]any {
		doc := map[string]any{"_id": id, "_type": pick("post", "page")}
		if IsGroupID(id) {
			// Group documents must be valid to be written; their members
			// and grants do not matter to this decision.
			doc = map[string]any{"_id": id, "_type": GroupType, "members": []any{pick("alice", "bob")}}
		}
		if a := pick("alice", "bob", "token-ci", ""); a != "" {
			doc["author"] = a
		}
		if s := pick("draft", "published", ""); s != "" {
			doc["status"] = s
		}
		return doc
	}
	groupNames := []string{"g0", "g1", "g2", "g3"}

	checked, allowedCount := 0, 0
	for world := range 1000 {
		w := &refWorld{dataset: "blog", public: r.IntN(2) == 0}
		var docs []map[string]any
		for _, name := range groupNames[:1+r.IntN(len(groupNames))] {
			g := modelGroup{name: name, members: subset("alice", "bob", "token-ci", "everyone", "authenticated")}
			var grants []any
			for range 1 + r.IntN(3) {
				gr := modelGrant{perms: subset("read", "create", "update", "manage")}
				if len(gr.perms) == 0 {
					gr.perms = []string{pick("read", "create", "update", "manage")}
				}
				m := map[string]any{"permissions": toAny(gr.perms)}
				if r.IntN(2) == 0 {
					gr.path = pick("*", "**", "drafts.**", "secret.*", "*.post-1", "post-1", "_.groups.**", "versions.*.**", "**.post-1")
					m["path"] = gr.path
				} else {
					gr.filter = randFilter(0)
					m["filter"] = gr.filter.groq()
				}
				g.grants = append(g.grants, gr)
				grants = append(grants, m)
			}
			w.groups = append(w.groups, g)
			docs = append(docs, roundTrip(t, map[string]any{"_id": "_.groups." + name, "_type": GroupType, "members": toAny(g.members), "grants": grants}))
		}
		acl := ACLPrivate
		if w.public {
			acl = ACLPublic
		}
		policy, errs := LoadPolicy(w.dataset, acl, docs)
		if len(errs) > 0 {
			t.Fatalf("world %d: %v", world, errs)
		}

		for range 20 {
			var p refPrincipal
			switch r.IntN(3) {
			case 0:
				p = refPrincipal{id: Everyone}
			case 1:
				p = refPrincipal{id: pick("alice", "bob", "carol"), authenticated: true, claims: subset("g0", "g1", "g2", "editor", "viewer", "nope")}
			default:
				p = refPrincipal{id: "token-ci", authenticated: true, roles: []RoleAssignment{{Role: Roles[r.IntN(len(Roles))], Dataset: pick("", "blog", "shop")}}}
			}
			pr := &Principal{ID: p.id, Authenticated: p.authenticated, Roles: p.roles, Groups: p.claims}
			c := policy.Checker(pr, testNow)

			id := ids[r.IntN(len(ids))]
			before, after := randDoc(id), randDoc(id)
			for _, action := range []Action{ActionRead, ActionCreate, ActionUpdate, ActionDelete} {
				var ref GrantRef
				var got bool
				var err error
				switch action {
				case ActionRead:
					ref, got = c.Read(before)
				case ActionCreate:
					ref, err = c.Create(id, after)
				case ActionUpdate:
					ref, err = c.Update(id, before, after)
				case ActionDelete:
					ref, err = c.Delete(id, before)
				}
				if action != ActionRead {
					got = err == nil
					if err != nil {
						if e, ok := err.(*Error); !ok || e.Code != CodePermissionDenied || e.ID != id {
							t.Fatalf("world %d: %s %s: error %v, want permissionDenied naming %s", world, action, id, err, id)
						}
					}
				}
				want, okRef := w.allowed(p, action, id, before, after)
				if got != want {
					t.Fatalf("world %d: %+v %s %s\nbefore %v\nafter  %v\ngroups %s\ngot allowed=%v (%v, %v), reference says %v",
						world, p, action, id, before, after, mustJSON(docs), got, ref, err, want)
				}
				if got && !okRef(ref) {
					t.Fatalf("world %d: %+v %s %s allowed by %v, which the reference says does not allow it", world, p, action, id, ref)
				}
				checked++
				if got {
					allowedCount++
				}
			}
		}
	}
	t.Logf("%d decisions checked, %d allowed", checked, allowedCount)
	if allowedCount < checked/10 || allowedCount > checked*9/10 {
		t.Errorf("%d of %d decisions allowed: the generator is too one-sided to test anything", allowedCount, checked)
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// roundTrip makes v a JSON value as encoding/json decodes it.
func roundTrip(tb testing.TB, v map[string]any) map[string]any {
	var out map[string]any
	if err := json.Unmarshal([]byte(mustJSON(v)), &out); err != nil {
		panic(err)
	}
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
