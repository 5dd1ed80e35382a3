package authz

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vellum-db/vellum/authz/groq"
)

// An ACL is a dataset's access mode.
type ACL string

// Dataset access modes.
const (
	ACLPublic  ACL = "public"  // everyone reads the root path
	ACLPrivate ACL = "private" // everyone gets nothing
)

// ParseACL returns the access mode named s.
func ParseACL(s string) (ACL, error) {
	switch a := ACL(s); a {
	case ACLPublic, ACLPrivate:
		return a, nil
	}
	return "", fmt.Errorf("unknown acl mode %q: want public or private", s)
}

// A GrantRef names one grant: the group document's id and the grant's index
// in its grants. It has the shape of eventlog.GrantRef, which events record
// for each effect. The zero GrantRef names no grant.
type GrantRef struct {
	Group string
	Index int
}

// String returns "GROUP#INDEX".
func (r GrantRef) String() string { return fmt.Sprintf("%s#%d", r.Group, r.Index) }

// A Policy is the immutable access policy of one dataset at one point of its
// log: its acl mode, the built-in groups and its group documents. Build a
// new one (NewPolicy, or With*) when a group document or the acl changes;
// a Policy is safe for concurrent use.
//
// Per principal it hands out a GrantSet, compiled once and cached by the
// set of groups the principal belongs to, so that principals with the same
// memberships share one GrantSet.
type Policy struct {
	dataset string
	acl     ACL
	groups  []*Group // built-ins first (in BuiltinGroups order), then custom ones by id
	byID    map[string]int

	byMember      map[string][]int // identity id -> groups listing it
	everyone      []int            // groups listing Everyone
	authenticated []int            // groups listing Authenticated
	byName        map[string]int   // group name -> index

	mu    sync.Mutex
	cache map[string]*GrantSet
}

// maxCachedGrantSets bounds a Policy's GrantSet cache; past it, GrantSets
// are built per call (correct, only slower).
const maxCachedGrantSets = 4096

// NewPolicy returns the policy of dataset with the given acl mode and custom
// groups. Groups with a built-in group's id, or with the same id as an
// earlier group, are ignored (they cannot be written, see Checker.Write).
func NewPolicy(dataset string, acl ACL, groups []*Group) *Policy {
	all := BuiltinGroups(acl)
	custom := make([]*Group, 0, len(groups))
	for _, g := range groups {
		if g == nil || IsBuiltinGroup(g.ID) {
			continue
		}
		custom = append(custom, g)
	}
	slices.SortStableFunc(custom, func(a, b *Group) int { return strings.Compare(a.ID, b.ID) })
	custom = slices.CompactFunc(custom, func(a, b *Group) bool { return a.ID == b.ID })
	all = append(all, custom...)

	p := &Policy{
		dataset:  dataset,
		acl:      acl,
		groups:   all,
		byID:     make(map[string]int, len(all)),
		byMember: map[string][]int{},
		byName:   make(map[string]int, len(all)),
		cache:    map[string]*GrantSet{},
	}
	for i, g := range all {
		p.byID[g.ID] = i
		p.byName[g.Name] = i
		for _, m := range g.Members {
			switch m {
			case Everyone:
				p.everyone = append(p.everyone, i)
			case Authenticated:
				p.authenticated = append(p.authenticated, i)
			default:
				p.byMember[m] = append(p.byMember[m], i)
			}
		}
	}
	return p
}

// LoadPolicy parses group documents (as stored: the documents whose ids
// start with GroupPrefix) and returns the policy. Documents that do not
// parse grant nothing and are returned as errors, so the caller can log
// them; they cannot occur through Checker.Write, which validates every
// group it allows.
func LoadPolicy(dataset string, acl ACL, docs []map[string]any) (*Policy, []error) {
	var groups []*Group
	var errs []error
	for _, d := range docs {
		id, _ := d["_id"].(string)
		if !IsGroupID(id) || IsBuiltinGroup(id) {
			continue
		}
		g, err := ParseGroup(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		groups = append(groups, g)
	}
	return NewPolicy(dataset, acl, groups), errs
}

// Dataset returns the dataset's name.
func (p *Policy) Dataset() string { return p.dataset }

// ACL returns the dataset's access mode.
func (p *Policy) ACL() ACL { return p.acl }

// Groups returns every group of the policy, built-ins first. The groups are
// shared and must not be modified.
func (p *Policy) Groups() []*Group { return slices.Clone(p.groups) }

// Group returns the group with id.
func (p *Policy) Group(id string) (*Group, bool) {
	i, ok := p.byID[id]
	if !ok {
		return nil, false
	}
	return p.groups[i], true
}

func (p *Policy) custom() []*Group {
	n := len(BuiltinGroups(p.acl))
	return p.groups[n:]
}

// WithACL returns the policy with another acl mode.
func (p *Policy) WithACL(acl ACL) *Policy { return NewPolicy(p.dataset, acl, p.custom()) }

// WithGroup returns the policy with g added, or replacing the group of the
// same id.
func (p *Policy) WithGroup(g *Group) *Policy {
	groups := []*Group{g}
	for _, c := range p.custom() {
		if c.ID != g.ID {
			groups = append(groups, c)
		}
	}
	return NewPolicy(p.dataset, p.acl, groups)
}

// WithoutGroup returns the policy without the group id.
func (p *Policy) WithoutGroup(id string) *Policy {
	var groups []*Group
	for _, c := range p.custom() {
		if c.ID != id {
			groups = append(groups, c)
		}
	}
	return NewPolicy(p.dataset, p.acl, groups)
}

// Apply returns the policy after a committed change of document id to
// after (nil when it was deleted). It returns p itself when id is not a
// custom group. The error is ParseGroup's; the policy then drops the group
// (it grants nothing).
func (p *Policy) Apply(id string, after map[string]any) (*Policy, error) {
	if !IsGroupID(id) || IsBuiltinGroup(id) {
		return p, nil
	}
	if after == nil {
		return p.WithoutGroup(id), nil
	}
	g, err := ParseGroup(after)
	if err != nil {
		return p.WithoutGroup(id), err
	}
	return p.WithGroup(g), nil
}

// Membership returns the ids of the groups pr belongs to, in policy order.
// pr is a member of a group when the group's members list its id, Everyone,
// or Authenticated (and pr is authenticated); when the group's name is among
// pr's JWT group names; and, for a built-in role group, when pr holds the
// role in this dataset.
func (p *Policy) Membership(pr *Principal) []string {
	idx := p.membership(pr)
	ids := make([]string, len(idx))
	for i, j := range idx {
		ids[i] = p.groups[j].ID
	}
	return ids
}

func (p *Policy) membership(pr *Principal) []int {
	if pr == nil {
		pr = Anonymous()
	}
	var idx []int
	idx = append(idx, p.everyone...)
	if pr.Authenticated {
		idx = append(idx, p.authenticated...)
		idx = append(idx, p.byMember[pr.ID]...)
	}
	for _, name := range pr.Groups {
		if i, ok := p.byName[name]; ok {
			idx = append(idx, i)
		}
	}
	for _, a := range pr.Roles {
		if a.Dataset == "" || a.Dataset == p.dataset {
			if i, ok := p.byName[string(a.Role)]; ok && p.groups[i].Builtin {
				idx = append(idx, i)
			}
		}
	}
	slices.Sort(idx)
	return slices.Compact(idx)
}

// GrantSet returns the compiled grants of pr's groups. Principals with the
// same memberships get the same *GrantSet.
func (p *Policy) GrantSet(pr *Principal) *GrantSet {
	idx := p.membership(pr)
	var buf [64]byte
	b := buf[:0]
	for i, j := range idx {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(j), 10)
	}
	key := string(b)
	p.mu.Lock()
	gs, ok := p.cache[key]
	p.mu.Unlock()
	if ok {
		return gs
	}
	gs = p.buildGrantSet(key, idx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.cache[key]; ok {
		return prev
	}
	if len(p.cache) < maxCachedGrantSets {
		p.cache[key] = gs
	}
	return gs
}

func (p *Policy) buildGrantSet(key string, idx []int) *GrantSet {
	gs := &GrantSet{key: key}
	for _, j := range idx {
		g := p.groups[j]
		gs.groups = append(gs.groups, g.ID)
		for k, gr := range g.Grants {
			ref := GrantRef{Group: g.ID, Index: k}
			gs.all = append(gs.all, refGrant{ref, gr})
			for _, perm := range gr.Permissions {
				b := permIndex(perm)
				gs.byPerm[b] = append(gs.byPerm[b], refGrant{ref, gr})
			}
			if gr.UsesIdentity() {
				gs.usesIdentity = true
			}
		}
	}
	gs.readAttrs = []string{"_id", "_type"} // the path grants' id, and filters' type pre-check
	for _, rg := range gs.byPerm[permIndex(PermRead)] {
		if f := rg.grant.filter; f != nil {
			gs.readWhole = gs.readWhole || f.wholeDoc
			gs.readAttrs = append(gs.readAttrs, f.attrs...)
		}
	}
	slices.Sort(gs.readAttrs)
	gs.readAttrs = slices.Compact(gs.readAttrs)
	return gs
}

func permIndex(p Permission) int {
	switch p {
	case PermRead:
		return 0
	case PermCreate:
		return 1
	case PermUpdate:
		return 2
	default:
		return 3
	}
}

type refGrant struct {
	ref   GrantRef
	grant *Grant
}

// A GrantSet is the effective grants of the principals that belong to one
// set of groups, compiled once. It is immutable and shared.
type GrantSet struct {
	key          string
	groups       []string
	all          []refGrant
	byPerm       [4][]refGrant // by permIndex, in policy order
	usesIdentity bool
	// readAttrs are the document attributes read decisions look at, unless
	// readWhole (see ReadAttributes).
	readAttrs []string
	readWhole bool
}

// Key identifies the set of groups (indices into the policy's groups); two
// principals of one Policy with the same key have the same grants.
func (gs *GrantSet) Key() string { return gs.key }

// Groups returns the ids of the groups whose grants gs holds.
func (gs *GrantSet) Groups() []string { return slices.Clone(gs.groups) }

// UsesIdentity reports whether a grant filter calls identity(). When it
// does not, a decision made for one principal with this GrantSet holds for
// every principal with it (listener fan-out evaluates once per GrantSet);
// when it does, decisions must be made per identity.
func (gs *GrantSet) UsesIdentity() bool { return gs.usesIdentity }

// ReadAttributes returns the top-level attributes of a document that gs's
// read decisions look at (_id and _type always among them): Checker.Read
// decides a document holding only these attributes of a stored one as it
// decides the whole, so a caller that needs only the decision may decode
// only them. ok is false when a read grant's filter may look at more (see
// groq.RootAttributes); then the whole document is needed. The slice must
// not be modified.
func (gs *GrantSet) ReadAttributes() (names []string, ok bool) {
	if gs.readWhole {
		return nil, false
	}
	return gs.readAttrs, true
}

// Allows returns the first grant of gs (in policy order) that gives perm on
// the document id and matches doc, evaluating filters with env.
func (gs *GrantSet) Allows(env *groq.Env, perm Permission, id string, doc map[string]any) (GrantRef, bool) {
	for _, rg := range gs.byPerm[permIndex(perm)] {
		if rg.grant.matches(env, id, doc) {
			return rg.ref, true
		}
	}
	return GrantRef{}, false
}

// allowsBoth returns the first grant giving perm that matches both versions
// of a document.
func (gs *GrantSet) allowsBoth(env *groq.Env, perm Permission, id string, before, after map[string]any) (GrantRef, bool) {
	for _, rg := range gs.byPerm[permIndex(perm)] {
		if rg.grant.matches(env, id, before) && rg.grant.matches(env, id, after) {
			return rg.ref, true
		}
	}
	return GrantRef{}, false
}

// matches reports whether the grant's path matches id or its filter is
// true for doc.
func (g *Grant) matches(env *groq.Env, id string, doc map[string]any) bool {
	if g.filter != nil {
		return g.filter.match(env, doc)
	}
	return g.path.Match(id)
}

// A Checker makes the decisions of one principal at one time (a
// transaction's, or an event's) under one Policy. It is cheap to make (one
// per transaction or read) and safe for concurrent use.
type Checker struct {
	policy    *Policy
	principal *Principal
	set       *GrantSet
	env       groq.Env
}

// Checker returns the checker of pr at time now (GROQ's now()).
func (p *Policy) Checker(pr *Principal, now time.Time) *Checker {
	if pr == nil {
		pr = Anonymous()
	}
	return &Checker{
		policy:    p,
		principal: pr,
		set:       p.GrantSet(pr),
		env:       groq.Env{Identity: pr.Identity(), Now: now},
	}
}

// GrantSet returns the checker's grant set.
func (c *Checker) GrantSet() *GrantSet { return c.set }

// ShareKey says which checkers of one Policy decide alike: two checkers
// with the same ShareKey (and the same time) make the same read and write
// decisions, so a listener fan-out evaluates an event once per distinct
// ShareKey. It is the GrantSet's key, plus the identity when the GrantSet's
// filters call identity().
func (c *Checker) ShareKey() string {
	if !c.set.usesIdentity {
		return c.set.key
	}
	return c.set.key + "|" + c.env.Identity
}

// Principal returns who the checker decides for.
func (c *Checker) Principal() *Principal { return c.principal }

// Read reports whether the principal may read doc, and the grant that lets
// it. A document that may not be read must be treated as missing.
func (c *Checker) Read(doc map[string]any) (GrantRef, bool) {
	if doc == nil {
		return GrantRef{}, false
	}
	id, _ := doc["_id"].(string)
	return c.set.Allows(&c.env, PermRead, id, doc)
}

// Write decides one effect of a transaction: the document id goes from
// before to after (nil meaning absent). It returns the grant that allows
// it, or an *Error: permissionDenied naming the document and the
// permission, or, for a group document, ParseGroup's error.
//
//   - create (before nil): a create grant matching after;
//   - update: one update grant matching both before and after;
//   - delete (after nil): an update grant matching before;
//   - a group document (_.groups.*): one manage grant matching before and
//     after (those present), a valid group document, and never a built-in
//     group.
//
// An effect with neither before nor after changes nothing and is allowed
// with the zero GrantRef.
func (c *Checker) Write(id string, before, after map[string]any) (GrantRef, error) {
	switch {
	case before == nil && after == nil:
		return GrantRef{}, nil
	case IsGroupID(id):
		return c.writeGroup(id, before, after)
	case before == nil:
		if ref, ok := c.set.Allows(&c.env, PermCreate, id, after); ok {
			return ref, nil
		}
		return GrantRef{}, denied(id, PermCreate, "%s may not create document %q: no create grant matches it", c.principal, id)
	case after == nil:
		if ref, ok := c.set.Allows(&c.env, PermUpdate, id, before); ok {
			return ref, nil
		}
		return GrantRef{}, denied(id, PermUpdate, "%s may not delete document %q: no update grant matches it", c.principal, id)
	default:
		if ref, ok := c.set.allowsBoth(&c.env, PermUpdate, id, before, after); ok {
			return ref, nil
		}
		return GrantRef{}, denied(id, PermUpdate, "%s may not update document %q: no update grant matches it both before and after the change", c.principal, id)
	}
}

func (c *Checker) writeGroup(id string, before, after map[string]any) (GrantRef, error) {
	if IsBuiltinGroup(id) {
		return GrantRef{}, denied(id, PermManage, "group %q is built in and cannot be changed", id)
	}
	var ref GrantRef
	var ok bool
	switch {
	case before == nil:
		ref, ok = c.set.Allows(&c.env, PermManage, id, after)
	case after == nil:
		ref, ok = c.set.Allows(&c.env, PermManage, id, before)
	default:
		ref, ok = c.set.allowsBoth(&c.env, PermManage, id, before, after)
	}
	if !ok {
		return GrantRef{}, denied(id, PermManage, "%s may not change group %q: no manage grant matches it", c.principal, id)
	}
	if after != nil {
		if aid, _ := after["_id"].(string); aid != id {
			return GrantRef{}, invalidGroup(id, -1, "group document %q has _id %q", id, aid)
		}
		if _, err := ParseGroup(after); err != nil {
			return GrantRef{}, err
		}
	}
	return ref, nil
}

// Create, Update and Delete are Write for one kind of change.
func (c *Checker) Create(id string, doc map[string]any) (GrantRef, error) {
	return c.Write(id, nil, doc)
}

// Update decides changing the document id from before to after.
func (c *Checker) Update(id string, before, after map[string]any) (GrantRef, error) {
	return c.Write(id, before, after)
}

// Delete decides deleting the document id, currently before.
func (c *Checker) Delete(id string, before map[string]any) (GrantRef, error) {
	return c.Write(id, before, nil)
}
