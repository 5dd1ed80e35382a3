package authz

import (
	"fmt"
	"slices"
	"strings"
)

// Group documents.
const (
	GroupType   = "system.group" // the _type of a group document
	GroupPrefix = "_.groups."    // the id of a group is GroupPrefix + its name
)

// PublicGroupName is the built-in group that gives everyone read access to
// the root path of a public dataset (and nothing in a private one).
const PublicGroupName = "public"

// GroupID returns the id of the group document of name.
func GroupID(name string) string { return GroupPrefix + name }

// IsGroupID reports whether id is under the group path _.groups.: writing
// such a document needs the manage permission and a valid group document.
func IsGroupID(id string) bool { return strings.HasPrefix(id, GroupPrefix) }

// IsBuiltinGroup reports whether id is one of the built-in groups, which
// exist in every dataset and can never be written.
func IsBuiltinGroup(id string) bool {
	name, ok := strings.CutPrefix(id, GroupPrefix)
	return ok && (name == PublicGroupName || slices.Contains(Roles, Role(name)))
}

// A Grant gives permissions on the documents that match its path glob or
// its GROQ filter (exactly one of the two is set).
type Grant struct {
	Path        string       // path glob, or ""
	Filter      string       // GROQ filter, or ""
	Permissions []Permission // in canonical order, without duplicates

	path   Path
	filter *filter
	perms  permSet
}

// Has reports whether g gives permission p.
func (g *Grant) Has(p Permission) bool { return g.perms.has(p) }

// UsesIdentity reports whether g's filter calls identity(), that is,
// whether its decision depends on who asks and not only on the groups the
// asker belongs to.
func (g *Grant) UsesIdentity() bool { return g.filter != nil && g.filter.usesIdentity }

// A Group is a parsed group document: grants and members.
type Group struct {
	ID      string // GroupPrefix + Name
	Name    string
	Grants  []*Grant
	Members []string // identity ids, Everyone or Authenticated
	Builtin bool     // one of the immutable built-in groups
}

// ParseGroup parses and validates a group document: _id is
// _.groups.NAME with NAME of a-zA-Z0-9_-, _type is system.group, grants is
// an array of {path | filter, permissions} with exactly one of path and
// filter and permissions a non-empty subset of read, create, update and
// manage, and members is an array of ids of a-zA-Z0-9_-. Filters are
// compiled in filter mode, so a syntax error, a subquery, a join or a
// dereference is rejected with its position.
//
// The error is an *Error: code invalidGroup for the shape of the document,
// queryParseError or invalidFilter (with Grant, Filter, Start and End) for a
// filter.
func ParseGroup(doc map[string]any) (*Group, error) {
	id, _ := doc["_id"].(string)
	name, ok := strings.CutPrefix(id, GroupPrefix)
	if !ok {
		return nil, invalidGroup(id, -1, "document %q is not a group: group ids start with %q", id, GroupPrefix)
	}
	if !isName(name) {
		return nil, invalidGroup(id, -1, "group id %q is not valid: the name after %q must be 1 to 128 of a-z, A-Z, 0-9, _ and -", id, GroupPrefix)
	}
	if t, _ := doc["_type"].(string); t != GroupType {
		return nil, invalidGroup(id, -1, "group %q must have _type %q, not %s", id, GroupType, describe(doc["_type"]))
	}
	g := &Group{ID: id, Name: name, Builtin: IsBuiltinGroup(id)}

	switch grants := doc["grants"].(type) {
	case nil:
	case []any:
		for i, raw := range grants {
			gr, err := parseGrant(id, i, raw)
			if err != nil {
				return nil, err
			}
			g.Grants = append(g.Grants, gr)
		}
	default:
		return nil, invalidGroup(id, -1, "group %q: grants must be an array, not %s", id, describe(grants))
	}

	switch members := doc["members"].(type) {
	case nil:
	case []any:
		for i, m := range members {
			s, ok := m.(string)
			if !ok || !isName(s) {
				return nil, invalidGroup(id, -1, "group %q: member %d is %s; member ids are 1 to 128 of a-z, A-Z, 0-9, _ and -", id, i, describe(m))
			}
			if !slices.Contains(g.Members, s) {
				g.Members = append(g.Members, s)
			}
		}
	default:
		return nil, invalidGroup(id, -1, "group %q: members must be an array, not %s", id, describe(members))
	}
	return g, nil
}

func parseGrant(id string, i int, raw any) (*Grant, error) {
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, invalidGroup(id, i, "group %q: grant %d must be an object, not %s", id, i, describe(raw))
	}
	gr := &Grant{}
	path, hasPath := obj["path"]
	flt, hasFilter := obj["filter"]
	if path == nil {
		hasPath = false
	}
	if flt == nil {
		hasFilter = false
	}
	switch {
	case hasPath && hasFilter:
		return nil, invalidGroup(id, i, "group %q: grant %d has both a path and a filter; give exactly one", id, i)
	case !hasPath && !hasFilter:
		return nil, invalidGroup(id, i, "group %q: grant %d has neither a path nor a filter; give exactly one", id, i)
	case hasPath:
		s, ok := path.(string)
		if !ok {
			return nil, invalidGroup(id, i, "group %q: grant %d: path must be a string, not %s", id, i, describe(path))
		}
		p, err := ParsePath(s)
		if err != nil {
			e := err.(*Error)
			e.ID, e.Grant = id, i
			e.Description = fmt.Sprintf("group %q: grant %d: %s", id, i, e.Description)
			return nil, e
		}
		gr.Path, gr.path = s, p
	default:
		s, ok := flt.(string)
		if !ok {
			return nil, invalidGroup(id, i, "group %q: grant %d: filter must be a string, not %s", id, i, describe(flt))
		}
		f, err := compileFilter(s)
		if err != nil {
			err.ID, err.Grant = id, i
			err.Description = fmt.Sprintf("group %q: grant %d: %s", id, i, err.Description)
			return nil, err
		}
		gr.Filter, gr.filter = s, f
	}

	perms, ok := obj["permissions"].([]any)
	if !ok || len(perms) == 0 {
		return nil, invalidGroup(id, i, "group %q: grant %d: permissions must be a non-empty array of read, create, update and manage, not %s", id, i, describe(obj["permissions"]))
	}
	for j, p := range perms {
		s, _ := p.(string)
		bit := permBit(Permission(s))
		if bit == 0 {
			return nil, invalidGroup(id, i, "group %q: grant %d: permission %d is %s; the permissions are read, create, update and manage", id, i, j, describe(p))
		}
		gr.perms |= bit
	}
	for _, p := range Permissions {
		if gr.perms.has(p) {
			gr.Permissions = append(gr.Permissions, p)
		}
	}
	return gr, nil
}

// describe names a JSON value's type and, for short scalars, its value, for
// error messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 40 {
			return fmt.Sprintf("the string %q...", x[:40])
		}
		return fmt.Sprintf("the string %q", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case []any:
		if len(x) == 0 {
			return "an empty array"
		}
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// Document returns g as a group document (without _rev and timestamps).
func (g *Group) Document() map[string]any {
	grants := make([]any, len(g.Grants))
	for i, gr := range g.Grants {
		perms := make([]any, len(gr.Permissions))
		for j, p := range gr.Permissions {
			perms[j] = string(p)
		}
		m := map[string]any{"permissions": perms}
		if gr.Filter != "" {
			m["filter"] = gr.Filter
		} else {
			m["path"] = gr.Path
		}
		grants[i] = m
	}
	members := make([]any, len(g.Members))
	for i, m := range g.Members {
		members[i] = m
	}
	return map[string]any{"_id": g.ID, "_type": GroupType, "grants": grants, "members": members}
}

// builtin returns a built-in group with path grants.
func builtin(name string, members []string, grants ...*Grant) *Group {
	return &Group{ID: GroupID(name), Name: name, Grants: grants, Members: members, Builtin: true}
}

func pathGrant(glob string, perms ...Permission) *Grant {
	g := &Grant{Path: glob, path: MustParsePath(glob)}
	for _, p := range perms {
		g.perms |= permBit(p)
	}
	for _, p := range Permissions {
		if g.perms.has(p) {
			g.Permissions = append(g.Permissions, p)
		}
	}
	return g
}

var (
	builtinRoles = []*Group{
		builtin(string(RoleAdministrator), nil, pathGrant("**", PermRead, PermCreate, PermUpdate, PermManage)),
		builtin(string(RoleEditor), nil, pathGrant("**", PermRead, PermCreate, PermUpdate)),
		builtin(string(RoleDeveloper), nil, pathGrant("**", PermRead, PermCreate, PermUpdate)),
		builtin(string(RoleContributor), nil, pathGrant("**", PermRead), pathGrant("drafts.**", PermCreate, PermUpdate)),
		builtin(string(RoleViewer), nil, pathGrant("**", PermRead)),
	}
	publicGroup  = builtin(PublicGroupName, []string{Everyone}, pathGrant("*", PermRead))
	privateGroup = builtin(PublicGroupName, []string{Everyone})
)

// BuiltinGroups returns the built-in groups of a dataset with the given
// acl: the five roles and the public group, which lets everyone read the
// root path ("*") of a public dataset and grants nothing in a private one.
// The groups are shared and must not be modified.
func BuiltinGroups(acl ACL) []*Group {
	gs := slices.Clone(builtinRoles)
	if acl == ACLPublic {
		return append(gs, publicGroup)
	}
	return append(gs, privateGroup)
}
