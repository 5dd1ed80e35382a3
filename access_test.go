package vellum

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vellum-db/vellum/authz"
)

// user is an end user as a verified JWT makes them.
func user(id string, groups ...string) *authz.Principal {
	return &authz.Principal{ID: id, Authenticated: true, Groups: groups}
}

func roleToken(name string, role authz.Role, dataset string) *authz.Principal {
	return authz.Token{Name: name, Role: role, Dataset: dataset}.Principal()
}

func transactAs(e *Engine, ds string, p *authz.Principal, body string) (*TxResult, error) {
	return e.Transact(context.Background(), ds, p, []byte(body))
}

func visible(t *testing.T, e *Engine, ds string, p *authz.Principal, id string) bool {
	t.Helper()
	docs, err := e.Get(context.Background(), ds, p, []string{id}, "raw")
	if err != nil {
		t.Fatalf("Get(%s) as %s: %v", id, p, err)
	}
	return len(docs) == 1
}

func wantDenied(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: allowed, want permissionDenied", what)
	}
	if ae := AsError(err); ae.Code != CodePermissionDenied {
		t.Fatalf("%s: %v, want permissionDenied", what, err)
	}
}

// The platform of seed 000: end users (JWT) create posts, and edit, delete
// and read the drafts of only their own.
func TestAuthorsPlatform(t *testing.T) {
	e := newTestEngine(t, "blog")
	mustTransact(t, e, "blog", `{"mutations":[{"create":{"_id":"_.groups.authors","_type":"system.group",
		"members":["authenticated"],
		"grants":[
			{"filter":"_type == \"post\" && author == identity()","permissions":["read","create","update"]},
			{"path":"*","permissions":["read"]}
		]}}]}`)
	alice, bob := user("alice"), user("bob")

	if _, err := transactAs(e, "blog", alice, `{"mutations":[{"create":{"_id":"drafts.a1","_type":"post","author":"alice","title":"Mine"}}]}`); err != nil {
		t.Fatalf("alice creates her draft: %v", err)
	}
	if _, err := transactAs(e, "blog", alice, `{"mutations":[{"create":{"_id":"a2","_type":"post","author":"alice"}}]}`); err != nil {
		t.Fatalf("alice creates her post: %v", err)
	}
	_, err := transactAs(e, "blog", alice, `{"mutations":[{"create":{"_id":"fake","_type":"post","author":"bob"}}]}`)
	wantDenied(t, err, "alice creates a post in bob's name")
	if !strings.Contains(AsError(err).Description, "fake") || AsError(err).Details["permission"] != "create" {
		t.Errorf("denial does not name the document and the permission: %+v", AsError(err))
	}

	_, err = transactAs(e, "blog", bob, `{"mutations":[{"patch":{"id":"a2","set":{"title":"pwned"}}}]}`)
	wantDenied(t, err, "bob edits alice's post")
	_, err = transactAs(e, "blog", bob, `{"mutations":[{"delete":{"id":"a2"}}]}`)
	wantDenied(t, err, "bob deletes alice's post")
	_, err = transactAs(e, "blog", alice, `{"mutations":[{"patch":{"id":"a2","set":{"author":"bob"}}}]}`)
	wantDenied(t, err, "alice gives her post away")
	if _, err := transactAs(e, "blog", alice, `{"mutations":[{"patch":{"id":"a2","set":{"title":"Edited"}}}]}`); err != nil {
		t.Fatalf("alice edits her post: %v", err)
	}

	if !visible(t, e, "blog", alice, "drafts.a1") {
		t.Error("alice cannot read her own draft")
	}
	if visible(t, e, "blog", bob, "drafts.a1") {
		t.Error("bob reads alice's draft")
	}
	if !visible(t, e, "blog", bob, "a2") {
		t.Error("bob cannot read a published post")
	}
	if docs, _ := e.Get(context.Background(), "blog", bob, []string{"a1"}, "drafts"); len(docs) != 0 {
		t.Errorf("drafts perspective shows bob alice's draft: %s", docs)
	}
	// A selection sees only what the caller may read: bob's query for drafts
	// finds nothing of alice's, and a query that finds her published post
	// is denied as a whole.
	res, err := transactAs(e, "blog", bob, `{"mutations":[{"delete":{"query":"*[_id in path(\"drafts.**\")]"}}]}`)
	if err != nil {
		t.Fatalf("bob's delete by query: %v", err)
	}
	for _, r := range res.Results {
		if r.Operation == "delete" {
			t.Fatalf("bob's query deleted %s", r.ID)
		}
	}
	_, err = transactAs(e, "blog", bob, `{"mutations":[{"delete":{"query":"*[_type == \"post\"]"}}]}`)
	wantDenied(t, err, "bob deletes alice's post by query")
	if _, err := transactAs(e, "blog", alice, `{"mutations":[{"delete":{"id":"a2"}}]}`); err != nil {
		t.Fatalf("alice deletes her post: %v", err)
	}

	// Each effect records the grant that allowed it.
	d, _ := e.dataset("blog")
	seq, _, _ := d.log.Head()
	ev, err := d.log.Get(seq)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Identity != "alice" || ev.Effects[0].Grant.Group != "_.groups.authors" || ev.Effects[0].Grant.Index != 0 {
		t.Errorf("event identity %q, grant %+v", ev.Identity, ev.Effects[0].Grant)
	}
}

func TestContributorWritesDraftsOnly(t *testing.T) {
	e := newTestEngine(t, "ds")
	c := roleToken("writer", authz.RoleContributor, "ds")
	if _, err := transactAs(e, "ds", c, `{"mutations":[{"create":{"_id":"drafts.p","_type":"post"}}]}`); err != nil {
		t.Fatalf("contributor writes a draft: %v", err)
	}
	_, err := transactAs(e, "ds", c, `{"mutations":[{"create":{"_id":"p","_type":"post"}}]}`)
	wantDenied(t, err, "contributor publishes")
	// A role for another dataset gives nothing here.
	other := roleToken("elsewhere", authz.RoleEditor, "other")
	_, err = transactAs(e, "ds", other, `{"mutations":[{"create":{"_id":"drafts.q","_type":"post"}}]}`)
	wantDenied(t, err, "editor of another dataset")
	if visible(t, e, "ds", other, "drafts.p") {
		t.Error("a role for another dataset reads this one")
	}
}

func TestEveryoneOnPublicAndPrivateDatasets(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	e.CreateDataset(ctx, SystemPrincipal, "pub", "public")
	e.CreateDataset(ctx, SystemPrincipal, "priv", "private")
	for _, ds := range []string{"pub", "priv"} {
		mustTransact(t, e, ds, `{"mutations":[
			{"create":{"_id":"page","_type":"page"}},
			{"create":{"_id":"drafts.page","_type":"page"}},
			{"create":{"_id":"secret.settings","_type":"settings"}}]}`)
	}
	anon := authz.Anonymous()
	if !visible(t, e, "pub", anon, "page") {
		t.Error("everyone cannot read a published root-path document of a public dataset")
	}
	for _, id := range []string{"drafts.page", "secret.settings"} {
		if visible(t, e, "pub", anon, id) {
			t.Errorf("everyone reads %s of a public dataset", id)
		}
	}
	for _, id := range []string{"page", "drafts.page", "secret.settings"} {
		if visible(t, e, "priv", anon, id) {
			t.Errorf("everyone reads %s of a private dataset", id)
		}
	}
	_, err := transactAs(e, "pub", anon, `{"mutations":[{"create":{"_id":"x","_type":"page"}}]}`)
	wantDenied(t, err, "everyone writes")
	// Making the dataset private applies to the very next read.
	if _, err := e.SetDatasetACL(ctx, SystemPrincipal, "pub", "private"); err != nil {
		t.Fatal(err)
	}
	if visible(t, e, "pub", anon, "page") {
		t.Error("everyone still reads after the dataset became private")
	}
}

func TestGroupsAreGuardedDocuments(t *testing.T) {
	e := newTestEngine(t, "ds")
	editor := roleToken("ed", authz.RoleEditor, "")
	_, err := transactAs(e, "ds", editor, `{"mutations":[{"create":{"_id":"_.groups.mine","_type":"system.group","members":["everyone"],"grants":[{"path":"**","permissions":["read"]}]}}]}`)
	wantDenied(t, err, "a non-manager creates a group")
	_, err = transactAs(e, "ds", SystemPrincipal, `{"mutations":[{"createOrReplace":{"_id":"_.groups.administrator","_type":"system.group","members":["everyone"],"grants":[]}}]}`)
	wantDenied(t, err, "anyone changes a built-in role")

	_, err = transactAs(e, "ds", SystemPrincipal, `{"mutations":[{"create":{"_id":"_.groups.bad","_type":"system.group","members":["authenticated"],
		"grants":[{"filter":"_type == 'post' && author._ref in *[_type == 'author']._id","permissions":["read"]}]}}]}`)
	ae := AsError(err)
	if ae == nil || (ae.Code != "invalidFilter" && ae.Code != "queryParseError") || ae.Details["filter"] == nil {
		t.Fatalf("a subquery in a grant filter: %+v, want invalidFilter with the filter", ae)
	}
	if ae.Start == nil || *ae.Start != strings.Index("_type == 'post' && author._ref in *[_type == 'author']._id", "*") {
		t.Errorf("invalid filter position = %v, want the offset of *", ae.Start)
	}

	// A group saved in one transaction applies to the very next one.
	bob := user("bob")
	_, err = transactAs(e, "ds", bob, `{"mutations":[{"create":{"_id":"notes.n1","_type":"note"}}]}`)
	wantDenied(t, err, "bob before his group exists")
	mustTransact(t, e, "ds", `{"mutations":[{"create":{"_id":"_.groups.notes","_type":"system.group","members":["bob"],"grants":[{"filter":"_type == 'note'","permissions":["create","read"]}]}}]}`)
	if _, err := transactAs(e, "ds", bob, `{"mutations":[{"create":{"_id":"notes.n1","_type":"note"}}]}`); err != nil {
		t.Fatalf("bob after his group was saved: %v", err)
	}
	if !visible(t, e, "ds", bob, "notes.n1") {
		t.Error("bob cannot read his note")
	}
	mustTransact(t, e, "ds", `{"mutations":[{"delete":{"id":"_.groups.notes"}}]}`)
	if visible(t, e, "ds", bob, "notes.n1") {
		t.Error("bob still reads after his group was deleted")
	}
}

func TestTokens(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, dir)
	ctx := context.Background()
	e.CreateDataset(ctx, SystemPrincipal, "ds", "private")
	secret, tok, err := e.CreateToken(ctx, SystemPrincipal, "deploy", "editor", "ds")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, authz.TokenSecretPrefix) || tok.Hash != authz.HashSecret(secret) {
		t.Fatalf("secret %q, record %+v", secret, tok)
	}
	// Only the hash is stored.
	for k, v := range dumpDB(t, e.pebbleDB()) {
		if strings.Contains(k, secret) || strings.Contains(string(v), secret) {
			t.Fatal("the token secret is stored")
		}
	}
	if _, _, err := e.CreateToken(ctx, SystemPrincipal, "deploy", "viewer", ""); err == nil {
		t.Error("a second token with the same name")
	}
	if _, _, err := e.CreateToken(ctx, roleToken("x", authz.RoleEditor, ""), "y", "viewer", ""); AsError(err).Code != CodePermissionDenied {
		t.Errorf("an editor creates a token: %v", err)
	}
	p := lookupPrincipal(t, e, secret)
	if _, err := transactAs(e, "ds", p, `{"mutations":[{"create":{"_id":"a","_type":"t"}}]}`); err != nil {
		t.Fatalf("write with the token: %v", err)
	}
	e.Close()
	e = openTest(t, dir)
	defer e.Close()
	if _, err := e.RevokeToken(ctx, SystemPrincipal, "deploy"); err != nil {
		t.Fatal(err)
	}
	if tok, ok, _ := e.LookupToken(ctx, authz.HashSecret(secret)); !ok || !tok.Revoked() {
		t.Fatalf("after revocation the record is %+v (found %v)", tok, ok)
	}
	list, _ := e.Tokens(ctx, SystemPrincipal)
	if len(list) != 1 || list[0].Name != "deploy" || list[0].RevokedAt == nil {
		t.Fatalf("tokens = %+v", list)
	}
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), secret) {
		t.Fatal("token list shows the secret")
	}
}

func lookupPrincipal(t *testing.T, e *Engine, secret string) *authz.Principal {
	t.Helper()
	tok, ok, err := e.LookupToken(context.Background(), authz.HashSecret(secret))
	if err != nil || !ok {
		t.Fatalf("token not found: %v", err)
	}
	return tok.Principal()
}

func TestExplain(t *testing.T) {
	e := newTestEngine(t, "blog")
	ctx := context.Background()
	mustTransact(t, e, "blog", `{"mutations":[
		{"create":{"_id":"_.groups.authors","_type":"system.group","members":["authenticated"],
			"grants":[{"filter":"_type == \"post\" && author == identity()","permissions":["read","create","update"]}]}},
		{"create":{"_id":"p1","_type":"post","author":"alice"}}]}`)
	alice, err := e.PrincipalFor("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	x, err := e.Explain(ctx, SystemPrincipal, "blog", alice, "p1", "update", json.RawMessage(`{"set":{"title":"t"}}`))
	if err != nil || !x.Allowed || x.Grant == nil || x.Grant.Group != "_.groups.authors" {
		t.Fatalf("explain alice's update: %+v, %v", x, err)
	}
	x, err = e.Explain(ctx, SystemPrincipal, "blog", alice, "p1", "update", json.RawMessage(`{"set":{"author":"bob"}}`))
	if err != nil || x.Allowed || !strings.Contains(x.String(), "authors") {
		t.Fatalf("explain giving the post away: %+v, %v", x, err)
	}
	bob, _ := e.PrincipalFor("bob", nil)
	x, err = e.Explain(ctx, SystemPrincipal, "blog", bob, "p2", "create", json.RawMessage(`{"_type":"post","author":"bob"}`))
	if err != nil || !x.Allowed {
		t.Fatalf("explain bob's create: %+v, %v", x, err)
	}
	if _, err := e.Explain(ctx, alice, "blog", bob, "p1", "read", nil); AsError(err).Code != CodePermissionDenied {
		t.Errorf("a non-administrator explains: %v", err)
	}
	if p, _ := e.PrincipalFor("everyone", nil); p.Authenticated {
		t.Error("everyone is authenticated")
	}
	if _, err := e.PrincipalFor("token-nope", nil); err == nil {
		t.Error("an unknown token resolves")
	}
	if _, err := e.PrincipalFor("bad id", nil); err == nil {
		t.Error("an invalid identity resolves")
	}
}
