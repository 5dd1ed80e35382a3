package natsapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/transport/natsapi"
)

// These tests run the access-control paths end to end: a real NATS server,
// the real engine, and the authenticator vellumd builds (the administrator
// token, then JWTs, then robot tokens from the engine, and no credential as
// everyone).

// accessFixture is a fixture whose service authenticates as vellumd does.
type accessFixture struct {
	*fixture
	hsSecret []byte            // the HS256 secret the daemon verifies with
	ecKey    *ecdsa.PrivateKey // signs ES256 JWTs, published in the JWKS as "ec-1"
	rsaKey   *rsa.PrivateKey   // signs RS256 JWTs, published in the JWKS as "rsa-1"
}

// authorsGroup is the group of the seed-000 platform: every authenticated
// user may read, create and update posts whose author is themselves.
const authorsGroup = `{"_id":"_.groups.authors","_type":"system.group","members":["authenticated"],
	"grants":[{"filter":"_type == \"post\" && author == identity()","permissions":["read","create","update"]}]}`

func newAccessFixture(t *testing.T) *accessFixture {
	t.Helper()
	af := &accessFixture{}
	// The secret as an operator writes it: surrounding white space is not
	// part of it.
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "jwt.secret")
	if err := os.WriteFile(secretFile, []byte("\n  an HS256 secret of more than 32 bytes, for tests \t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret, err := authz.ReadHS256SecretFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	af.hsSecret = []byte("an HS256 secret of more than 32 bytes, for tests")
	if string(secret) != string(af.hsSecret) {
		t.Fatalf("ReadHS256SecretFile = %q, want the trimmed content", secret)
	}
	if af.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if af.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	jwksFile := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksFile, jwks(t, af.ecKey, af.rsaKey), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := authz.ReadJWKSFile(jwksFile)
	if err != nil {
		t.Fatal(err)
	}
	var eng *vellum.Engine
	af.fixture = newFixtureAuth(t, func(e *vellum.Engine) natsapi.Authenticator {
		eng = e
		v, err := authz.NewJWTVerifier(authz.JWTConfig{HS256Secret: secret, JWKS: set})
		if err != nil {
			t.Fatal(err)
		}
		return natsapi.AdminToken(testToken, &authz.Authenticator{JWT: v, Tokens: eng})
	})
	return af
}

// jwks returns a JSON Web Key Set holding the public keys of ec and rk.
func jwks(t *testing.T, ec *ecdsa.PrivateKey, rk *rsa.PrivateKey) []byte {
	t.Helper()
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	pad := func(n *big.Int) []byte { return n.FillBytes(make([]byte, 32)) }
	set := map[string]any{"keys": []any{
		map[string]any{"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "alg": "ES256",
			"x": b64(pad(ec.X)), "y": b64(pad(ec.Y))},
		map[string]any{"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
			"n": b64(rk.N.Bytes()), "e": b64(big.NewInt(int64(rk.E)).Bytes())},
	}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwtFor signs claims with method and key; kid is put in the header when
// not empty.
func jwtFor(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// user returns an HS256 JWT for sub, valid for an hour.
func (af *accessFixture) user(t *testing.T, sub string) string {
	return jwtFor(t, jwt.SigningMethodHS256, af.hsSecret, "", jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
}

func (af *accessFixture) as(credential string) *natsapi.Client {
	return natsapi.NewClient(af.nc, credential)
}

// wantCode checks that err is a typed error with code.
func wantCode(t *testing.T, what string, err error, code string) *vellum.Error {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want %s", what, code)
		return nil
	}
	e := vellum.AsError(err)
	if e.Code != code {
		t.Errorf("%s: %v, want %s", what, err, code)
	}
	return e
}

func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// getIDs returns the ids of the documents c may see among ids.
func getIDs(t *testing.T, c *natsapi.Client, dataset string, ids ...string) string {
	t.Helper()
	raw, err := c.Get(ctxT(t), dataset, ids, "raw")
	if err != nil {
		t.Fatalf("get %v: %v", ids, err)
	}
	var got []string
	for _, r := range raw {
		var d struct {
			ID string `json:"_id"`
		}
		if err := json.Unmarshal(r, &d); err != nil {
			t.Fatal(err)
		}
		got = append(got, d.ID)
	}
	return strings.Join(got, " ")
}

func TestTokenLifecycle(t *testing.T) {
	af := newAccessFixture(t)
	ctx := ctxT(t)
	af.mustCreateDataset(t, "blog")
	af.mustCreateDataset(t, "other")

	created, err := af.client.CreateToken(ctx, "ci-deploy", "editor", "blog")
	mustOK(t, "create token", err)
	if !strings.HasPrefix(created.Secret, authz.TokenSecretPrefix) || created.Token.Name != "ci-deploy" ||
		created.Token.Identity != "token-ci-deploy" || created.Token.Role != "editor" ||
		created.Token.Dataset != "blog" || created.Token.CreatedAt.IsZero() || created.Token.RevokedAt != nil {
		t.Fatalf("created token = %+v", created)
	}
	robot := af.as(created.Secret)

	_, err = robot.Mutate(ctx, "blog", []byte(`{"mutations":[{"create":{"_id":"post-1","_type":"post","title":"by robot"}}]}`))
	mustOK(t, "the editor token writes its dataset", err)
	if got := getIDs(t, robot, "blog", "post-1"); got != "post-1" {
		t.Errorf("the editor token reads %q, want post-1", got)
	}
	_, err = robot.Mutate(ctx, "other", []byte(`{"mutations":[{"create":{"_id":"post-1","_type":"post"}}]}`))
	wantCode(t, "the editor token of blog writes other", err, "permissionDenied")
	_, err = robot.CreateToken(ctx, "escalate", "administrator", "")
	wantCode(t, "the editor token creates a token", err, "permissionDenied")
	_, err = robot.SetDatasetACL(ctx, "blog", "private")
	wantCode(t, "the editor token changes an acl", err, "permissionDenied")

	// The list never holds a secret (nor its hash).
	msg := nats.NewMsg(natsapi.SubjectTokenList)
	msg.Header.Set("Authorization", "Bearer "+testToken)
	reply, err := af.nc.RequestMsg(msg, 10*time.Second)
	mustOK(t, "token list", err)
	if strings.Contains(string(reply.Data), created.Secret) || strings.Contains(string(reply.Data), authz.HashSecret(created.Secret)) {
		t.Errorf("the token list shows the secret or its hash: %s", reply.Data)
	}
	list, err := af.client.Tokens(ctx)
	mustOK(t, "token list", err)
	if len(list) != 1 || list[0].Name != "ci-deploy" || list[0].RevokedAt != nil {
		t.Errorf("token list = %+v, want ci-deploy, valid", list)
	}

	for _, c := range []struct{ name, role, dataset, code string }{
		{"ci-deploy", "editor", "", "invalidToken"},      // the name is taken
		{"bad name", "viewer", "", "invalidToken"},       // not a-zA-Z0-9_-
		{"x", "owner", "", "invalidToken"},               // not a built-in role
		{"y", "viewer", "nope", "unknownDataset"},        // no such dataset
		{"", "viewer", "", "invalidToken"},               // no name
		{"z", "administrator", "Blog", "unknownDataset"}, // not a dataset name
	} {
		_, err := af.client.CreateToken(ctx, c.name, c.role, c.dataset)
		wantCode(t, "create token "+c.name+"/"+c.role+"/"+c.dataset, err, c.code)
	}

	revoked, err := af.client.RevokeToken(ctx, "ci-deploy")
	mustOK(t, "revoke", err)
	if revoked.RevokedAt == nil {
		t.Errorf("revoked token = %+v, want a revocation time", revoked)
	}
	// The very next request with the token fails.
	_, err = robot.Mutate(ctx, "blog", []byte(`{"mutations":[{"create":{"_id":"post-2","_type":"post"}}]}`))
	e := wantCode(t, "the revoked token writes", err, "unauthorized")
	if e != nil && !strings.Contains(e.Description, "revoked") {
		t.Errorf("the revoked token's error says %q, want it to say revoked", e.Description)
	}
	_, err = robot.Get(ctx, "blog", []string{"post-1"}, "")
	wantCode(t, "the revoked token reads", err, "unauthorized")
	list, err = af.client.Tokens(ctx)
	mustOK(t, "token list", err)
	if len(list) != 1 || list[0].RevokedAt == nil {
		t.Errorf("token list after revoke = %+v, want ci-deploy revoked", list)
	}
	_, err = af.client.RevokeToken(ctx, "nobody")
	wantCode(t, "revoke an unknown token", err, "invalidToken")
}

func TestJWT(t *testing.T) {
	af := newAccessFixture(t)
	ctx := ctxT(t)
	af.mustCreateDataset(t, "blog")
	af.mustMutate(t, "blog", `{"mutations":[{"create":`+authorsGroup+`}]}`)

	alice, bob := af.as(af.user(t, "alice")), af.as(af.user(t, "bob"))
	_, err := alice.Mutate(ctx, "blog", []byte(`{"mutations":[{"create":{"_id":"post-a","_type":"post","author":"alice","title":"Mine"}}]}`))
	mustOK(t, "alice creates her post", err)
	_, err = alice.Mutate(ctx, "blog", []byte(`{"mutations":[{"create":{"_id":"post-fake","_type":"post","author":"bob"}}]}`))
	if e := wantCode(t, "alice creates a post in bob's name", err, "permissionDenied"); e != nil &&
		(e.ID != "post-fake" || e.Details["permission"] != "create") {
		t.Errorf("denial = %+v, want id post-fake and permission create", e)
	}
	_, err = bob.Mutate(ctx, "blog", []byte(`{"mutations":[{"patch":{"id":"post-a","set":{"title":"Bob's now"}}}]}`))
	wantCode(t, "bob edits alice's post", err, "permissionDenied")
	_, err = alice.Mutate(ctx, "blog", []byte(`{"mutations":[{"patch":{"id":"post-a","set":{"author":"bob"}}}]}`))
	wantCode(t, "alice gives her post away", err, "permissionDenied")
	_, err = alice.Mutate(ctx, "blog", []byte(`{"mutations":[{"patch":{"id":"post-a","set":{"title":"Still mine"}}}]}`))
	mustOK(t, "alice edits her post", err)

	// The event records the end user's identity.
	got, err := af.client.Get(ctx, "blog", []string{"post-a"}, "")
	mustOK(t, "get", err)
	if len(got) != 1 || !strings.Contains(string(got[0]), `"title":"Still mine"`) {
		t.Errorf("post-a = %s", got)
	}

	// ES256 and RS256 JWTs, verified with the JWKS.
	exp := time.Now().Add(time.Hour).Unix()
	for _, c := range []struct {
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{jwt.SigningMethodES256, af.ecKey, "ec-1"},
		{jwt.SigningMethodRS256, af.rsaKey, "rsa-1"},
		{jwt.SigningMethodES256, af.ecKey, ""}, // no kid: each key of the right type is tried
	} {
		carol := af.as(jwtFor(t, c.method, c.key, c.kid, jwt.MapClaims{"sub": "carol", "exp": exp}))
		id := "post-carol-" + strings.ToLower(c.method.Alg()) + c.kid
		_, err := carol.Mutate(ctx, "blog", []byte(`{"mutations":[{"create":{"_id":"`+id+`","_type":"post","author":"carol"}}]}`))
		mustOK(t, "carol ("+c.method.Alg()+", kid "+c.kid+") creates her post", err)
	}

	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	past := time.Now().Add(-2 * time.Hour).Unix()
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"alice","exp":`+jsonNum(exp)+`}`)) + "."
	forged := af.user(t, "alice")
	forged = forged[:strings.LastIndex(forged, ".")+1] + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for _, c := range []struct{ name, credential, says string }{
		{"expired", jwtFor(t, jwt.SigningMethodHS256, af.hsSecret, "", jwt.MapClaims{"sub": "alice", "exp": past}), "expired"},
		{"no exp", jwtFor(t, jwt.SigningMethodHS256, af.hsSecret, "", jwt.MapClaims{"sub": "alice"}), "exp"},
		{"wrong HS256 secret", jwtFor(t, jwt.SigningMethodHS256, []byte("another secret of more than 32 bytes!!"), "", jwt.MapClaims{"sub": "alice", "exp": exp}), "signature"},
		{"forged signature", forged, "signature"},
		{"ES256 with an unknown key", jwtFor(t, jwt.SigningMethodES256, otherEC, "ec-1", jwt.MapClaims{"sub": "alice", "exp": exp}), ""},
		{"alg none", none, "alg none"},
		{"reserved identity", jwtFor(t, jwt.SigningMethodHS256, af.hsSecret, "", jwt.MapClaims{"sub": "token-admin", "exp": exp}), "reserved"},
		{"not a token", "vlm_nope", ""},
		{"garbage JWT", "a.b.c", ""},
	} {
		c := c
		t.Run(c.name, func(t *testing.T) {
			_, err := af.as(c.credential).Get(ctx, "blog", []string{"post-a"}, "")
			e := wantCode(t, c.name, err, "unauthorized")
			if e != nil && !strings.Contains(e.Description, c.says) {
				t.Errorf("%s: %q does not say %q", c.name, e.Description, c.says)
			}
			if e != nil && strings.Contains(e.Description, c.credential) {
				t.Errorf("%s: the error repeats the credential", c.name)
			}
		})
	}
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestAnonymousAndACL(t *testing.T) {
	af := newAccessFixture(t)
	ctx := ctxT(t)
	af.mustCreateDataset(t, "blog") // public by default
	if _, err := af.client.CreateDataset(ctx, "vault", "private"); err != nil {
		t.Fatal(err)
	}
	docs := `{"mutations":[
		{"create":{"_id":"post-1","_type":"post","title":"Public"}},
		{"create":{"_id":"drafts.post-1","_type":"post","title":"Draft"}},
		{"create":{"_id":"secret.config","_type":"config"}},
		{"create":{"_id":"versions.r1.post-1","_type":"post"}}]}`
	af.mustMutate(t, "blog", docs)
	af.mustMutate(t, "vault", docs)
	all := []string{"post-1", "drafts.post-1", "secret.config", "versions.r1.post-1"}

	anon := af.as("")
	for _, c := range []struct{ dataset, want string }{
		{"blog", "post-1"},
		{"vault", ""},
	} {
		if got := getIDs(t, anon, c.dataset, all...); got != c.want {
			t.Errorf("everyone reads %q of %s, want %q", got, c.dataset, c.want)
		}
	}
	if got := getIDs(t, af.client, "blog", all...); got != strings.Join(all, " ") {
		t.Errorf("the administrator reads %q", got)
	}
	_, err := anon.Mutate(ctx, "blog", []byte(`{"mutations":[{"create":{"_id":"post-2","_type":"post"}}]}`))
	wantCode(t, "everyone writes", err, "permissionDenied")
	_, err = anon.Mutate(ctx, "blog", []byte(`{"mutations":[{"patch":{"id":"post-1","set":{"title":"x"}}}]}`))
	wantCode(t, "everyone patches", err, "permissionDenied")
	_, err = anon.Datasets(ctx)
	wantCode(t, "everyone lists datasets", err, "permissionDenied")
	_, err = anon.CreateToken(ctx, "t", "viewer", "")
	wantCode(t, "everyone creates a token", err, "permissionDenied")

	// An acl change applies to the very next request.
	info, err := af.client.SetDatasetACL(ctx, "blog", "private")
	mustOK(t, "blog becomes private", err)
	if info.Name != "blog" || info.ACL != "private" {
		t.Errorf("SetDatasetACL = %+v", info)
	}
	if got := getIDs(t, anon, "blog", all...); got != "" {
		t.Errorf("everyone reads %q of blog once private, want nothing", got)
	}
	_, err = af.client.SetDatasetACL(ctx, "vault", "public")
	mustOK(t, "vault becomes public", err)
	if got := getIDs(t, anon, "vault", all...); got != "post-1" {
		t.Errorf("everyone reads %q of vault once public, want post-1", got)
	}
	list, err := af.client.Datasets(ctx)
	mustOK(t, "datasets", err)
	if len(list) != 2 || list[0].ACL != "private" || list[1].ACL != "public" {
		t.Errorf("datasets after the changes = %+v", list)
	}
	_, err = af.client.SetDatasetACL(ctx, "blog", "secret")
	wantCode(t, "acl secret", err, "invalidAclMode")
	_, err = af.client.SetDatasetACL(ctx, "nope", "public")
	wantCode(t, "acl of an unknown dataset", err, "unknownDataset")
	_, err = af.client.SetDatasetACL(ctx, "No.pe", "public")
	wantCode(t, "acl of a bad dataset name", err, "invalidDatasetName")
}

func TestExplain(t *testing.T) {
	af := newAccessFixture(t)
	ctx := ctxT(t)
	af.mustCreateDataset(t, "blog")
	af.mustMutate(t, "blog", `{"mutations":[{"create":`+authorsGroup+`},
		{"create":{"_id":"post-a","_type":"post","author":"alice"}},
		{"create":{"_id":"post-b","_type":"post","author":"bob"}},
		{"create":{"_id":"drafts.post-b","_type":"post","author":"bob"}}]}`)
	_, err := af.client.CreateToken(ctx, "reader", "viewer", "blog")
	mustOK(t, "create token", err)

	type grant struct {
		ref     string
		matched bool
		reason  string // substring, when not matched
	}
	for _, c := range []struct {
		name    string
		req     natsapi.ExplainRequest
		allowed bool
		by      string // the grant that allows it
		grants  []grant
	}{
		{"alice updates bob's post", natsapi.ExplainRequest{As: "alice", ID: "post-b", Action: "update"}, false, "",
			[]grant{{"_.groups.public#0", false, "does not give update"}, {"_.groups.authors#0", false, "false"}}},
		{"alice updates her post", natsapi.ExplainRequest{As: "alice", ID: "post-a", Action: "update", Patch: json.RawMessage(`{"set":{"title":"t"}}`)}, true, "_.groups.authors#0",
			[]grant{{"_.groups.public#0", false, ""}, {"_.groups.authors#0", true, ""}}},
		{"alice gives her post away", natsapi.ExplainRequest{As: "alice", ID: "post-a", Action: "update", Patch: json.RawMessage(`{"set":{"author":"bob"}}`)}, false, "",
			[]grant{{"_.groups.public#0", false, ""}, {"_.groups.authors#0", false, "after"}}},
		{"everyone reads a draft", natsapi.ExplainRequest{As: "everyone", ID: "drafts.post-b", Action: "read"}, false, "",
			[]grant{{"_.groups.public#0", false, "drafts.post-b"}}},
		{"everyone reads a post", natsapi.ExplainRequest{As: "everyone", ID: "post-b", Action: "read"}, true, "_.groups.public#0",
			[]grant{{"_.groups.public#0", true, ""}}},
		{"the viewer token deletes", natsapi.ExplainRequest{As: "token-reader", ID: "post-b", Action: "delete"}, false, "",
			[]grant{{"_.groups.public#0", false, ""}, {"_.groups.viewer#0", false, "does not give update"}}},
		{"a JWT group member creates", natsapi.ExplainRequest{As: "dave", Groups: []string{"editor"}, ID: "post-new", Action: "create", Patch: json.RawMessage(`{"_type":"post","author":"erin"}`)}, true, "_.groups.editor#0",
			nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			x, err := af.client.Explain(ctx, "blog", c.req)
			if err != nil {
				t.Fatal(err)
			}
			if x.Allowed != c.allowed || x.ID != c.req.ID || string(x.Action) != c.req.Action {
				t.Errorf("explanation:\n%s\nwant allowed=%v", x, c.allowed)
			}
			if by := ""; x.Grant != nil {
				by = x.Grant.String()
				if by != c.by {
					t.Errorf("allowed by %s, want %s", by, c.by)
				}
			} else if c.by != "" {
				t.Errorf("no grant allows it, want %s", c.by)
			}
			got := map[string]authz.GrantExplanation{}
			for _, g := range x.Grants {
				got[g.Group+"#"+itoa(g.Index)] = g
			}
			for _, w := range c.grants {
				g, ok := got[w.ref]
				switch {
				case !ok:
					t.Errorf("grant %s missing from:\n%s", w.ref, x)
				case g.Matched != w.matched || !strings.Contains(g.Reason, w.reason):
					t.Errorf("grant %s: matched %v (%q), want %v (%q)\n%s", w.ref, g.Matched, g.Reason, w.matched, w.reason, x)
				}
			}
		})
	}

	for _, c := range []struct {
		name   string
		client *natsapi.Client
		req    natsapi.ExplainRequest
		code   string
	}{
		{"by a non-administrator", af.as(af.user(t, "alice")), natsapi.ExplainRequest{As: "alice", ID: "post-a", Action: "read"}, "permissionDenied"},
		{"by everyone", af.as(""), natsapi.ExplainRequest{As: "everyone", ID: "post-a", Action: "read"}, "permissionDenied"},
		{"an unknown action", af.client, natsapi.ExplainRequest{As: "alice", ID: "post-a", Action: "publish"}, "invalidRequest"},
		{"a bad identity", af.client, natsapi.ExplainRequest{As: "al ice", ID: "post-a", Action: "read"}, "invalidRequest"},
		{"an unknown token", af.client, natsapi.ExplainRequest{As: "token-nope", ID: "post-a", Action: "read"}, "invalidToken"},
		{"a bad id", af.client, natsapi.ExplainRequest{As: "alice", ID: "bad id", Action: "read"}, "invalidDocumentId"},
	} {
		_, err := c.client.Explain(ctx, "blog", c.req)
		wantCode(t, "explain "+c.name, err, c.code)
	}
	_, err = af.client.Explain(ctx, "nope", natsapi.ExplainRequest{As: "alice", ID: "post-a", Action: "read"})
	wantCode(t, "explain in an unknown dataset", err, "unknownDataset")
	_, err = af.client.Explain(ctx, "No", natsapi.ExplainRequest{As: "alice", ID: "post-a", Action: "read"})
	wantCode(t, "explain in a bad dataset name", err, "invalidDatasetName")
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestGroupWrites(t *testing.T) {
	af := newAccessFixture(t)
	ctx := ctxT(t)
	af.mustCreateDataset(t, "blog")
	af.mustMutate(t, "blog", `{"mutations":[{"create":`+authorsGroup+`}]}`)
	editor, err := af.client.CreateToken(ctx, "ed", "editor", "")
	mustOK(t, "create token", err)
	alice := af.as(af.user(t, "alice"))

	for _, c := range []struct {
		name   string
		client *natsapi.Client
		tx     string
		code   string
	}{
		{"an author edits the authors group", alice,
			`{"mutations":[{"patch":{"id":"_.groups.authors","set":{"members":["everyone"]}}}]}`, "permissionDenied"},
		{"an author creates a group", alice,
			`{"mutations":[{"create":{"_id":"_.groups.mine","_type":"system.group","members":["alice"],"grants":[{"path":"**","permissions":["read","update"]}]}}]}`, "permissionDenied"},
		{"an editor token edits a group", af.as(editor.Secret),
			`{"mutations":[{"patch":{"id":"_.groups.authors","set":{"members":["everyone"]}}}]}`, "permissionDenied"},
		{"the administrator changes a built-in role", af.client,
			`{"mutations":[{"createOrReplace":{"_id":"_.groups.editor","_type":"system.group","members":["everyone"],"grants":[{"path":"**","permissions":["read"]}]}}]}`, "permissionDenied"},
		{"the administrator opens the public group", af.client,
			`{"mutations":[{"createOrReplace":{"_id":"_.groups.public","_type":"system.group","members":["everyone"],"grants":[{"path":"**","permissions":["read"]}]}}]}`, "permissionDenied"},
		{"the administrator saves a filter with a subquery", af.client,
			`{"mutations":[{"patch":{"id":"_.groups.authors","set":{"grants":[{"filter":"count(*[_type == 'x']) > 0","permissions":["read"]}]}}}]}`, "invalidFilter"},
		{"the administrator saves a filter that does not parse", af.client,
			`{"mutations":[{"patch":{"id":"_.groups.authors","set":{"grants":[{"filter":"_type == ","permissions":["read"]}]}}}]}`, "queryParseError"},
	} {
		_, err := c.client.Mutate(ctx, "blog", []byte(c.tx))
		e := wantCode(t, c.name, err, c.code)
		if e != nil && c.code == "invalidFilter" && (e.Start == nil || e.End == nil || e.Details["grant"] == nil) {
			t.Errorf("%s: %+v, want the construct's position and the grant", c.name, e)
		}
	}
	// The administrator may change the authors group, and it applies at once.
	af.mustMutate(t, "blog", `{"mutations":[{"patch":{"id":"_.groups.authors","set":{"members":["nobody"]}}}]}`)
	_, err = alice.Mutate(ctx, "blog", []byte(`{"mutations":[{"create":{"_id":"post-a","_type":"post","author":"alice"}}]}`))
	wantCode(t, "alice writes after leaving the authors", err, "permissionDenied")
}

// newFixtureAuth is newFixture with the service's authenticator made from
// the engine.
func newFixtureAuth(t testing.TB, auth func(*vellum.Engine) natsapi.Authenticator) *fixture {
	t.Helper()
	f := &fixture{ns: startNATS(t)}
	eng, err := vellum.Open(t.TempDir(), vellum.Options{MaxDocumentSize: maxDocSize})
	if err != nil {
		t.Fatal(err)
	}
	f.eng = eng
	svcConn, err := nats.Connect(f.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	f.srv, err = natsapi.Serve(svcConn, eng, natsapi.Options{Auth: auth(eng)})
	if err != nil {
		t.Fatal(err)
	}
	f.nc, err = nats.Connect(f.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	f.client = natsapi.NewClient(f.nc, testToken)
	t.Cleanup(func() {
		f.nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.srv.Close(ctx); err != nil {
			t.Errorf("closing the server: %v", err)
		}
		svcConn.Close()
		if err := eng.Close(); err != nil {
			t.Errorf("closing the engine: %v", err)
		}
	})
	return f
}
