package vellum

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/eventlog"
	"github.com/vellum-db/vellum/projection"
	"github.com/vellum-db/vellum/projection/mutation"
)

// The auditor's checks (docs/audit.md): verification of a dataset's log and
// projections, and who could access a document at a past time.

// VerifyDataset checks dataset name (or the system dataset, "_system"):
// its hash chain, and that its current documents, history index and time
// and transaction indexes are what replaying its log yields (see
// projection.Store.Verify). It returns the number of events verified. A
// failure is an *Error with code hashChainBroken, corruptEvent or
// projectionMismatch whose Details give the event ("seq"), what replaying
// the log yields ("expected") and what is stored ("found"). Only
// administrators may verify: a mismatch shows document contents.
//
// progress, if not nil, is called with the events verified so far and the
// log's length when the verification started.
func (e *Engine) VerifyDataset(ctx context.Context, name string, p *authz.Principal, progress func(done, total uint64)) (uint64, error) {
	if err := requireAdmin(p, "verify datasets"); err != nil {
		return 0, err
	}
	d := e.system
	if name != systemDatasetName {
		var err error
		if d, err = e.dataset(name); err != nil {
			return 0, err
		}
	}
	if err := d.w.readBarrier(ctx); err != nil {
		return 0, err
	}
	head, _, err := d.log.Head()
	if err != nil {
		return 0, AsError(err)
	}
	d.rebuild.RLock()
	defer d.rebuild.RUnlock()
	n, err := d.store.Verify(ctx, func(n uint64) {
		if progress != nil {
			progress(n, max(head, n))
		}
	})
	if err != nil {
		return n, verifyError(name, err)
	}
	return n, nil
}

// verifyError converts a verification failure into an *Error with the
// inconsistency in Details.
func verifyError(name string, err error) error {
	var ce *eventlog.ChainError
	var m *projection.Mismatch
	var le *eventlog.Error
	switch {
	case errors.As(err, &ce):
		return &Error{Code: ce.ErrorCode(), Description: fmt.Sprintf("dataset %q, event %d: %s", name, ce.Seq, ce.Reason),
			Details: map[string]any{"seq": ce.Seq, "expected": hex.EncodeToString(ce.Expected[:]), "found": hex.EncodeToString(ce.Found[:])}}
	case errors.As(err, &m):
		desc := fmt.Sprintf("dataset %q, event %d, %s", name, m.Seq, m.Space)
		if m.DocID != "" {
			desc += fmt.Sprintf(", document %q", m.DocID)
		}
		if m.Count > 1 {
			desc += fmt.Sprintf(" (the first of %d inconsistencies)", m.Count)
		}
		det := map[string]any{"seq": m.Seq, "keyspace": m.Space, "expected": m.Expected, "found": m.Found, "count": m.Count}
		return &Error{Code: m.ErrorCode(), Description: desc + ": the store does not match its log", ID: m.DocID, Details: det}
	case errors.As(err, &le):
		return &Error{Code: le.Code, Description: fmt.Sprintf("dataset %q: %s", name, le.Error()),
			Details: map[string]any{"seq": le.Seq, "expected": "a valid event", "found": le.Description}}
	}
	return AsError(err)
}

// AccessReport says who could read and who could update one document at
// one time, reconstructed from the dataset's group documents, its acl mode
// and the robot tokens as they were then.
type AccessReport struct {
	Dataset  string    `json:"dataset"`
	Document string    `json:"document"`
	At       string    `json:"at"`       // the time asked about, RFC 3339
	Seq      uint64    `json:"seq"`      // the dataset's last event at or before it
	Revision string    `json:"revision"` // the document's _rev then
	ACL      string    `json:"aclMode"`  // the dataset's acl mode then
	Read     AccessSet `json:"read"`
	Update   AccessSet `json:"update"`
}

// AccessSet lists who had one permission on the document.
type AccessSet struct {
	// Identities are the identities known to the store then, each decided
	// with all its groups and roles: everyone (no credential), the
	// members named in group documents, "authenticated" (any verified
	// credential), and the robot tokens valid then.
	Identities []IdentityAccess `json:"identities"`
	// Roles are the built-in roles that gave it, each on its own.
	Roles []GrantAccess `json:"roles"`
	// Groups are the custom groups (group documents) that gave it, each on
	// its own: to their listed members and to every end user whose JWT
	// names the group.
	Groups []GroupAccess `json:"groups"`
}

// IdentityAccess is one identity that had the permission, and the grant
// that gave it.
type IdentityAccess struct {
	Identity string `json:"identity"`
	Kind     string `json:"kind"`           // everyone, authenticated, token, or user
	Role     string `json:"role,omitempty"` // a token's role
	Grant    string `json:"grant"`          // GROUP#INDEX
}

// GrantAccess is a built-in role and the grant of it that gave the
// permission.
type GrantAccess struct {
	Role  string `json:"role"`
	Grant string `json:"grant"`
}

// GroupAccess is a custom group, the grant of it that gave the permission,
// and its members then. IdentityDependent is true when the group's grants
// call identity(): then the grant was decided for an unnamed member, and
// Identities has the decision for each named one.
type GroupAccess struct {
	Group             string   `json:"group"`
	Grant             string   `json:"grant"`
	Members           []string `json:"members"`
	IdentityDependent bool     `json:"identityDependent,omitempty"`
}

// AccessAt reconstructs who could read and who could update document id of
// dataset name at time t: the document as it was then, the dataset's group
// documents (_.groups.*) then, its acl mode then, and the robot tokens
// (token.* records of the system dataset) valid then, decided with the
// same policy code as a live request at t. End users are known by the
// identities group documents list; a user's JWT groups claim is not
// stored, so the Groups list stands for them.
//
// The caller needs what history needs: p may read, under its current
// grants, the document as it was at t. Errors: documentNotFound (did not
// exist then, or p may not read it), timeBeforeDataset, invalidTime (a
// time in the future), invalidDocumentId.
func (e *Engine) AccessAt(ctx context.Context, name string, p *authz.Principal, id string, t time.Time) (*AccessReport, error) {
	d, err := e.dataset(name)
	if err != nil {
		return nil, err
	}
	if err := validateID(id); err != nil {
		return nil, err
	}
	if t.IsZero() {
		return nil, errorf(CodeInvalidTime, "access needs a time")
	}
	seq, _, err := d.resolve(ctx, Point{Time: t})
	if err != nil {
		return nil, err
	}
	when := t.UTC().Format(time.RFC3339Nano)
	d.rebuild.RLock()
	raw, ok, err := d.store.AtSeq(id, seq)
	if err == nil && ok {
		ok, err = canRead(d.checker(p, time.Now()), raw)
	}
	var groupDocs []map[string]any
	if err == nil && ok {
		err = d.store.ScanPrefixAt(authz.GroupPrefix, seq, func(gid string, doc []byte) error {
			var m map[string]any
			if err := json.Unmarshal(doc, &m); err != nil {
				return fmt.Errorf("group document %q: %w", gid, err)
			}
			groupDocs = append(groupDocs, m)
			return nil
		})
	}
	d.rebuild.RUnlock()
	if err != nil {
		return nil, AsError(err)
	}
	if !ok {
		return nil, &Error{Code: mutation.CodeDocumentNotFound, ID: id,
			Description: fmt.Sprintf("document %q of dataset %q not found at %s: it did not exist then, or %s may not read it", id, name, when, describe(p))}
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, AsError(err)
	}

	// The system dataset then: the dataset's acl mode and the tokens.
	if err := e.system.w.readBarrier(ctx); err != nil {
		return nil, err
	}
	sysSeq, err := e.system.log.SeqAtTime(t)
	if err != nil {
		return nil, AsError(err)
	}
	e.system.rebuild.RLock()
	recRaw, recOK, err := e.system.store.AtSeq(datasetDocPrefix+name, sysSeq)
	var tokens []authz.Token
	if err == nil {
		err = e.system.store.ScanPrefixAt(tokenDocPrefix, sysSeq, func(tid string, b []byte) error {
			var tok authz.Token
			if err := json.Unmarshal(b, &tok); err != nil {
				return fmt.Errorf("token record %q: %w", tid, err)
			}
			tokens = append(tokens, tok)
			return nil
		})
	}
	e.system.rebuild.RUnlock()
	if err != nil {
		return nil, AsError(err)
	}
	if !recOK {
		return nil, errorf(CodeTimeBeforeDataset, "dataset %q did not exist yet at %s", name, when)
	}
	var rec datasetRecord
	if err := json.Unmarshal(recRaw, &rec); err != nil {
		return nil, AsError(err)
	}
	acl, err := authz.ParseACL(rec.ACL)
	if err != nil {
		return nil, AsError(err)
	}
	pol, errs := authz.LoadPolicy(name, acl, groupDocs)
	for _, err := range errs {
		e.logger.Warn("group document ignored in an access report", "dataset", name, "at", when, "err", err)
	}

	rev, _ := doc["_rev"].(string)
	r := &AccessReport{Dataset: name, Document: id, At: when, Seq: seq, Revision: rev, ACL: string(acl)}
	decide := func(c *authz.Checker) (read, update string) {
		if ref, ok := c.Read(doc); ok {
			read = ref.String()
		}
		if ref, err := c.Write(id, doc, doc); err == nil {
			update = ref.String()
		}
		return read, update
	}

	// Identities, each with everything it had.
	type candidate struct {
		p          *authz.Principal
		kind, role string
	}
	cands := []candidate{{p: authz.Anonymous(), kind: authz.Everyone}}
	seen := map[string]bool{authz.Everyone: true}
	for _, tok := range tokens {
		if tok.Revoked() || (tok.Dataset != "" && tok.Dataset != name) || tok.CreatedAt.After(t) {
			continue
		}
		seen[tok.Identity()] = true
		cands = append(cands, candidate{p: tok.Principal(), kind: "token", role: string(tok.Role)})
	}
	var members []string
	for _, g := range pol.Groups() {
		members = append(members, g.Members...)
	}
	slices.Sort(members)
	for _, m := range slices.Compact(members) {
		if seen[m] {
			continue
		}
		seen[m] = true
		kind := "user"
		switch {
		case m == authz.Authenticated:
			kind = authz.Authenticated
		case strings.HasPrefix(m, authz.TokenIdentityPrefix):
			kind = "token" // named in a group, but no valid token then
		}
		cands = append(cands, candidate{p: &authz.Principal{ID: m, Authenticated: true}, kind: kind})
	}
	for _, c := range cands {
		read, update := decide(pol.Checker(c.p, t))
		if read != "" {
			r.Read.Identities = append(r.Read.Identities, IdentityAccess{Identity: c.p.ID, Kind: c.kind, Role: c.role, Grant: read})
		}
		if update != "" {
			r.Update.Identities = append(r.Update.Identities, IdentityAccess{Identity: c.p.ID, Kind: c.kind, Role: c.role, Grant: update})
		}
	}

	// Roles and groups, each on its own (a private acl, so that the public
	// group adds nothing).
	for _, role := range authz.Roles {
		alone := authz.NewPolicy(name, authz.ACLPrivate, nil)
		read, update := decide(alone.Checker(&authz.Principal{ID: "role-" + string(role), Authenticated: true,
			Roles: []authz.RoleAssignment{{Role: role}}}, t))
		if read != "" {
			r.Read.Roles = append(r.Read.Roles, GrantAccess{Role: string(role), Grant: read})
		}
		if update != "" {
			r.Update.Roles = append(r.Update.Roles, GrantAccess{Role: string(role), Grant: update})
		}
	}
	for _, g := range pol.Groups() {
		if g.Builtin {
			continue
		}
		alone := authz.NewPolicy(name, authz.ACLPrivate, []*authz.Group{g})
		read, update := decide(alone.Checker(&authz.Principal{ID: "member-of-" + g.Name, Authenticated: true, Groups: []string{g.Name}}, t))
		dep := slices.ContainsFunc(g.Grants, func(gr *authz.Grant) bool { return gr.UsesIdentity() })
		members := slices.Clone(g.Members)
		if members == nil {
			members = []string{}
		}
		if read != "" {
			r.Read.Groups = append(r.Read.Groups, GroupAccess{Group: g.ID, Grant: read, Members: members, IdentityDependent: dep})
		}
		if update != "" {
			r.Update.Groups = append(r.Update.Groups, GroupAccess{Group: g.ID, Grant: update, Members: members, IdentityDependent: dep})
		}
	}
	for _, s := range []*AccessSet{&r.Read, &r.Update} {
		if s.Identities == nil {
			s.Identities = []IdentityAccess{}
		}
		if s.Roles == nil {
			s.Roles = []GrantAccess{}
		}
		if s.Groups == nil {
			s.Groups = []GroupAccess{}
		}
	}
	return r, nil
}
