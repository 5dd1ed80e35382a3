package authz

import (
	"fmt"
	"slices"
	"strings"
)

// A Permission is what a grant allows on the documents it matches.
type Permission string

// The four permissions of a grant.
const (
	PermRead   Permission = "read"
	PermCreate Permission = "create"
	PermUpdate Permission = "update"
	PermManage Permission = "manage" // write group documents (_.groups.*)
)

// Permissions lists the valid permissions in canonical order.
var Permissions = []Permission{PermRead, PermCreate, PermUpdate, PermManage}

type permSet uint8

func permBit(p Permission) permSet {
	switch p {
	case PermRead:
		return 1
	case PermCreate:
		return 2
	case PermUpdate:
		return 4
	case PermManage:
		return 8
	}
	return 0
}

func (s permSet) has(p Permission) bool { return s&permBit(p) != 0 }

// An Action is what a principal asks to do to one document.
type Action string

// Actions.
const (
	ActionRead   Action = "read"
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
)

// ParseAction returns the action named s.
func ParseAction(s string) (Action, error) {
	switch a := Action(s); a {
	case ActionRead, ActionCreate, ActionUpdate, ActionDelete:
		return a, nil
	}
	return "", &Error{Code: CodeInvalidRequest, Grant: -1,
		Description: fmt.Sprintf("unknown action %q: want read, create, update or delete", s)}
}

// A Role is one of the built-in roles. Each role is the built-in group of
// the same name in every dataset (_.groups.administrator, ...).
type Role string

// The built-in roles.
const (
	RoleAdministrator Role = "administrator" // read, create, update and manage everything
	RoleEditor        Role = "editor"        // read, create and update everything
	RoleDeveloper     Role = "developer"     // read, create and update everything
	RoleContributor   Role = "contributor"   // read everything; create and update drafts only
	RoleViewer        Role = "viewer"        // read everything
)

// Roles lists the built-in roles.
var Roles = []Role{RoleAdministrator, RoleEditor, RoleDeveloper, RoleContributor, RoleViewer}

// ParseRole returns the built-in role named s.
func ParseRole(s string) (Role, error) {
	if slices.Contains(Roles, Role(s)) {
		return Role(s), nil
	}
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return "", &Error{Code: CodeInvalidToken, Grant: -1,
		Description: fmt.Sprintf("unknown role %q: the roles are %s", s, strings.Join(names, ", "))}
}

// A RoleAssignment gives a principal a built-in role in one dataset, or in
// every dataset when Dataset is empty.
type RoleAssignment struct {
	Role    Role
	Dataset string
}

// Special member ids of group documents.
const (
	// Everyone is the identity of a request without a credential, and, in a
	// group's members, every principal (with or without a credential).
	Everyone = "everyone"
	// Authenticated, in a group's members, is every principal that
	// presented a verified robot token or JWT.
	Authenticated = "authenticated"
)

// TokenIdentityPrefix prefixes the name of a robot token to form its
// identity id ("token-deploy"). End-user identities (JWT claims) may not
// start with it, so the two can never collide.
const TokenIdentityPrefix = "token-"

// A Principal is who is asking: everyone (no credential), a robot token or
// an end user with a verified JWT.
type Principal struct {
	// ID is the identity id (a-zA-Z0-9_-): Everyone, TokenIdentityPrefix +
	// the token's name, or the JWT's identity claim. It is what events
	// record and what a group's members list.
	ID string
	// Authenticated is true for a verified token or JWT.
	Authenticated bool
	// Roles are the built-in roles the principal holds (a robot token has
	// exactly one).
	Roles []RoleAssignment
	// Groups are the group names taken from the JWT's groups claim: the
	// principal is a member of _.groups.NAME for each NAME. Built-in role
	// names count too: a claim containing "editor" makes the user an
	// editor of every dataset.
	Groups []string
}

// Anonymous returns the principal of a request without a credential.
func Anonymous() *Principal { return &Principal{ID: Everyone} }

// Identity returns the value of GROQ's identity() for p: its id when
// authenticated, "" (null) for everyone.
func (p *Principal) Identity() string {
	if p == nil || !p.Authenticated {
		return ""
	}
	return p.ID
}

// HasRole reports whether p holds role in dataset (directly or through an
// assignment for all datasets).
func (p *Principal) HasRole(role Role, dataset string) bool {
	if p == nil {
		return false
	}
	for _, a := range p.Roles {
		if a.Role == role && (a.Dataset == "" || a.Dataset == dataset) {
			return true
		}
	}
	return false
}

// String describes p for messages: "everyone", "token-deploy", "user alice".
func (p *Principal) String() string {
	switch {
	case p == nil || !p.Authenticated:
		return Everyone
	case strings.HasPrefix(p.ID, TokenIdentityPrefix):
		return "robot token " + strings.TrimPrefix(p.ID, TokenIdentityPrefix)
	default:
		return "user " + p.ID
	}
}
