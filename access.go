package vellum

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/projection"
)

// Access control in the engine (see docs/access-control.md):
//
//   - Each dataset holds an immutable authz.Policy built from its acl mode
//     and its group documents (_.groups.*). The writer replaces it when a
//     transaction changes a group document, so the change applies from the
//     very next transaction; reads and selections use the same policy.
//   - Robot tokens are records "token.<name>" in the system dataset: every
//     creation and revocation is a logged, hash-chained transaction. The
//     engine keeps them in memory by hash and swaps the map on change.
//   - Dataset creation, acl changes and token management need the
//     administrator role for all datasets.

// SystemPrincipal is the daemon itself, for the writes it makes on its own
// behalf (such as the first administrator token).
var SystemPrincipal = &authz.Principal{
	ID:            "vellumd",
	Authenticated: true,
	Roles:         []authz.RoleAssignment{{Role: authz.RoleAdministrator}},
}

const (
	tokenDocPrefix = "token."
	tokenDocType   = "system.token"
)

// CodePermissionDenied is authz's code, for project-level actions too.
const CodePermissionDenied = authz.CodePermissionDenied

// requireAdmin checks that p may manage the project: datasets and tokens.
func requireAdmin(p *authz.Principal, action string) error {
	if p.HasRole(authz.RoleAdministrator, "") {
		return nil
	}
	return errorf(CodePermissionDenied, "%s may not %s: that needs the administrator role for all datasets", describe(p), action)
}

func describe(p *authz.Principal) string {
	if p == nil {
		return authz.Everyone
	}
	return p.String()
}

// loadPolicy builds the dataset's policy from its acl and group documents.
// A group document that no longer parses (it was valid when saved, so this
// only happens across versions) grants nothing and is logged.
func (d *dataset) loadPolicy() error {
	acl, err := authz.ParseACL(d.info.ACL)
	if err != nil {
		return err
	}
	var docs []map[string]any
	err = d.store.ScanPrefix(authz.GroupPrefix, func(id string, raw []byte) error {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return fmt.Errorf("group document %q: %w", id, err)
		}
		docs = append(docs, doc)
		return nil
	})
	if err != nil {
		return err
	}
	pol, errs := authz.LoadPolicy(d.name, acl, docs)
	for _, err := range errs {
		d.e.logger.Warn("group document ignored", "dataset", d.name, "err", err)
	}
	d.setPolicy(pol)
	return nil
}

// setPolicy makes pol the dataset's policy. The policy is stored before its
// generation is counted, and policyNow reads them in the other order, so a
// reader never pairs a generation with a policy older than it.
func (d *dataset) setPolicy(pol *authz.Policy) {
	d.policy.Store(pol)
	d.policyGen.Add(1)
}

// policyNow returns the dataset's policy and its generation (the policy may
// be newer than the generation says, never older).
func (d *dataset) policyNow() (*authz.Policy, uint64) {
	gen := d.policyGen.Load()
	return d.policy.Load(), gen
}

// checker returns the access decisions of p in the dataset at time now.
func (d *dataset) checker(p *authz.Principal, now time.Time) *authz.Checker {
	return d.policy.Load().Checker(p, now)
}

// readable decodes a stored document and reports whether c may read it.
func readable(c *authz.Checker, raw []byte) (map[string]any, bool, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, false, err
	}
	_, ok := c.Read(doc)
	return doc, ok, nil
}

// canRead reports whether c may read the stored document raw. It decodes
// only the attributes c's read grants look at when it can (see
// authz.GrantSet.ReadAttributes): a read grant whose filter tests _type
// needs _type, not the document's body.
func canRead(c *authz.Checker, raw []byte) (bool, error) {
	if names, ok := c.GrantSet().ReadAttributes(); ok {
		if doc, ok := projection.DecodeAttributes(raw, names); ok {
			_, can := c.Read(doc)
			return can, nil
		}
	}
	_, can, err := readable(c, raw)
	return can, err
}

// loadTokens reads the token records of the system dataset into memory.
func (e *Engine) loadTokens() error {
	tokens := authz.TokenMap{}
	err := e.system.store.ScanPrefix(tokenDocPrefix, func(id string, raw []byte) error {
		var t authz.Token
		if err := json.Unmarshal(raw, &t); err != nil {
			return fmt.Errorf("token record %q: %w", id, err)
		}
		tokens[t.Hash] = t
		return nil
	})
	if err != nil {
		return err
	}
	e.tokens.Store(&tokens)
	return nil
}

// LookupToken implements authz.TokenStore over the engine's token records.
func (e *Engine) LookupToken(ctx context.Context, hash string) (authz.Token, bool, error) {
	return (*e.tokens.Load()).LookupToken(ctx, hash)
}

// tokenRecord is the document that stores a robot token in the system
// dataset: the token's fields with the document's id and type.
type tokenRecord struct {
	ID   string `json:"_id"`
	Type string `json:"_type"`
	authz.Token
}

// putToken writes a token record through the system dataset's log and then
// publishes it to the in-memory map, so it is valid (or revoked) for the
// very next request.
func (e *Engine) putToken(ctx context.Context, p *authz.Principal, t authz.Token, create bool) error {
	op := "createOrReplace"
	if create {
		op = "create"
	}
	rec := tokenRecord{ID: tokenDocPrefix + t.Name, Type: tokenDocType, Token: t}
	body, err := json.Marshal(map[string]any{"mutations": []any{map[string]any{op: rec}}})
	if err != nil {
		return err
	}
	e.tokenMu.Lock()
	defer e.tokenMu.Unlock()
	if _, err := e.system.transact(ctx, p, body); err != nil {
		if AsError(err).Code == "documentAlreadyExists" {
			return errorf(authz.CodeInvalidToken, "a token named %q already exists", t.Name)
		}
		return err
	}
	next := authz.TokenMap{}
	for h, old := range *e.tokens.Load() {
		if old.Name != t.Name {
			next[h] = old
		}
	}
	next[t.Hash] = t
	e.tokens.Store(&next)
	e.access.changed()
	return nil
}

// CreateToken makes a robot token with a built-in role for one dataset (or
// all, when dataset is ""). It returns the secret, which is shown only
// now: only its hash is stored.
func (e *Engine) CreateToken(ctx context.Context, p *authz.Principal, name, role, dataset string) (string, authz.Token, error) {
	if err := requireAdmin(p, "create tokens"); err != nil {
		return "", authz.Token{}, err
	}
	r, err := authz.ParseRole(role)
	if err != nil {
		return "", authz.Token{}, AsError(err)
	}
	if dataset != "" {
		if _, err := e.dataset(dataset); err != nil {
			return "", authz.Token{}, err
		}
	}
	secret, tok, err := authz.NewToken(name, r, dataset, time.Now())
	if err != nil {
		return "", authz.Token{}, AsError(err)
	}
	if err := e.putToken(ctx, p, tok, true); err != nil {
		return "", authz.Token{}, err
	}
	e.logger.Info("token created", "token", name, "role", role, "dataset", dataset, "by", describe(p))
	return secret, tok, nil
}

// Tokens lists the token records (without secrets, which are never stored),
// by name.
func (e *Engine) Tokens(ctx context.Context, p *authz.Principal) ([]authz.Token, error) {
	if err := requireAdmin(p, "list tokens"); err != nil {
		return nil, err
	}
	m := *e.tokens.Load()
	out := make([]authz.Token, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RevokeToken revokes a token: its next request fails. The record stays,
// with its revocation time, for audit.
func (e *Engine) RevokeToken(ctx context.Context, p *authz.Principal, name string) (authz.Token, error) {
	if err := requireAdmin(p, "revoke tokens"); err != nil {
		return authz.Token{}, err
	}
	var tok authz.Token
	found := false
	for _, t := range *e.tokens.Load() {
		if t.Name == name {
			tok, found = t, true
		}
	}
	if !found {
		return authz.Token{}, errorf(authz.CodeInvalidToken, "no token named %q", name)
	}
	if tok.Revoked() {
		return tok, nil
	}
	now := time.Now().UTC()
	tok.RevokedAt = &now
	if err := e.putToken(ctx, p, tok, false); err != nil {
		return authz.Token{}, err
	}
	e.logger.Info("token revoked", "token", name, "by", describe(p))
	return tok, nil
}

// SetDatasetACL changes a dataset's acl mode (public or private). The
// change is a logged transaction of the system dataset and applies from the
// next request on.
func (e *Engine) SetDatasetACL(ctx context.Context, p *authz.Principal, name, acl string) (DatasetInfo, error) {
	if err := requireAdmin(p, "change a dataset's acl"); err != nil {
		return DatasetInfo{}, err
	}
	if acl != "public" && acl != "private" {
		return DatasetInfo{}, errorf(CodeInvalidACL, "invalid acl mode %q: use public or private", acl)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.byName[name]
	if d == nil {
		return DatasetInfo{}, errorf(CodeUnknownDataset, "dataset %q does not exist", name)
	}
	body, _ := json.Marshal(map[string]any{"mutations": []any{map[string]any{"patch": map[string]any{
		"id": datasetDocPrefix + name, "set": map[string]any{"aclMode": acl},
	}}}})
	if _, err := e.system.transact(ctx, p, body); err != nil {
		return DatasetInfo{}, err
	}
	d.info.ACL = acl // e.mu is held: Datasets reads info under it
	d.setPolicy(d.policy.Load().WithACL(authz.ACL(acl)))
	e.access.changed()
	e.logger.Info("dataset acl changed", "dataset", name, "acl", acl, "by", describe(p))
	return d.info, nil
}

// Explain says, for the principal as, whether it may do action on the
// document id of a dataset (for update, after applying patch, a Sanity
// patch body), listing every grant it holds and why each matched or not.
func (e *Engine) Explain(ctx context.Context, p *authz.Principal, name string, as *authz.Principal, id, action string, patch json.RawMessage) (*authz.Explanation, error) {
	d, err := e.dataset(name)
	if err != nil {
		return nil, err
	}
	if !p.HasRole(authz.RoleAdministrator, name) {
		return nil, errorf(CodePermissionDenied, "%s may not explain access in dataset %q: that needs the administrator role", describe(p), name)
	}
	act, err := authz.ParseAction(action)
	if err != nil {
		return nil, AsError(err)
	}
	if err := validateID(id); err != nil {
		return nil, err
	}
	if err := d.w.readBarrier(ctx); err != nil {
		return nil, err
	}
	d.rebuild.RLock()
	raw, ok, err := d.store.Get(id, projection.Raw)
	d.rebuild.RUnlock()
	var doc map[string]any
	if err != nil {
		return nil, err
	}
	if ok {
		json.Unmarshal(raw, &doc)
	}
	var after map[string]any
	switch {
	case act == authz.ActionCreate && doc == nil:
		// The document to create is given in place of a patch.
		if len(patch) == 0 {
			return nil, errorf("documentNotFound", "document %q does not exist: to explain its creation, give the new document (as the patch)", id)
		}
		if err := json.Unmarshal(patch, &doc); err != nil || doc == nil {
			return nil, errorf("malformedTransaction", "the document to create is not a JSON object")
		}
		doc["_id"] = id
	case len(patch) > 0:
		if doc == nil {
			return nil, errorf("documentNotFound", "document %q does not exist, so it cannot be patched", id)
		}
		// A dry run of the patch gives the document after it.
		body, _ := json.Marshal(map[string]any{"dryRun": true, "returnDocuments": true, "mutations": []any{map[string]any{"patch": json.RawMessage(mergePatchID(patch, id))}}})
		res, err := d.transact(ctx, SystemPrincipal, body)
		if err != nil {
			return nil, err
		}
		if len(res.Results) > 0 && res.Results[0].Document != nil {
			json.Unmarshal(res.Results[0].Document, &after)
		}
	}
	x, err := d.policy.Load().Explain(as, time.Now(), act, doc, after)
	if err != nil {
		return nil, AsError(err)
	}
	return x, nil
}

// mergePatchID sets "id" in a patch body.
func mergePatchID(patch json.RawMessage, id string) []byte {
	var m map[string]any
	if json.Unmarshal(patch, &m) != nil || m == nil {
		m = map[string]any{}
	}
	m["id"] = id
	b, _ := json.Marshal(m)
	return b
}

// PrincipalFor returns the principal an identity id stands for, as explain
// needs it: "everyone" is the anonymous principal; "token-NAME" is that
// robot token (with its role); any other id is an authenticated end user,
// member of the given JWT groups.
func (e *Engine) PrincipalFor(identity string, groups []string) (*authz.Principal, error) {
	switch {
	case identity == authz.Everyone:
		return authz.Anonymous(), nil
	case strings.HasPrefix(identity, authz.TokenIdentityPrefix):
		name := strings.TrimPrefix(identity, authz.TokenIdentityPrefix)
		for _, t := range *e.tokens.Load() {
			if t.Name == name {
				return t.Principal(), nil
			}
		}
		return nil, errorf(authz.CodeInvalidToken, "no token named %q", name)
	case identity == "":
		return nil, errorf(authz.CodeInvalidRequest, "an identity id is needed")
	}
	for _, r := range identity {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return nil, errorf(authz.CodeInvalidRequest, "identity id %q may only contain a-zA-Z0-9_-", identity)
		}
	}
	return &authz.Principal{ID: identity, Authenticated: true, Groups: groups}, nil
}
