package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	jwtNow    = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	hsSecret  = []byte("0123456789abcdef0123456789abcdef-test-secret")
	rsaKey    = mustRSA()
	rsaOther  = mustRSA()
	ecKey     = mustEC()
	jwksBytes = mustJWKS(map[string]any{"rsa-1": &rsaKey.PublicKey, "ec-1": &ecKey.PublicKey})
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJWKS(keys map[string]any) []byte {
	var out []map[string]any
	for kid, k := range keys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			out = append(out, map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
		case *ecdsa.PublicKey:
			x, y := make([]byte, 32), make([]byte, 32)
			k.X.FillBytes(x)
			k.Y.FillBytes(y)
			out = append(out, map[string]any{"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256", "x": b64(x), "y": b64(y)})
		case []byte:
			out = append(out, map[string]any{"kty": "oct", "kid": kid, "k": b64(k)})
		}
	}
	b, err := json.Marshal(map[string]any{"keys": out})
	if err != nil {
		panic(err)
	}
	return b
}

func claims(extra map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "exp": jwtNow.Add(time.Hour).Unix(), "iat": jwtNow.Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return s
}

func TestJWTVerify(t *testing.T) {
	rsaPubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaPubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPubDER})
	noneToken := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	// alg "none" with a forged signature part must fail the same way.
	noneWithSig := noneToken + "c2ln"

	both := JWTConfig{HS256Secret: hsSecret, JWKS: jwksBytes, Now: func() time.Time { return jwtNow }}
	onlyJWKS := JWTConfig{JWKS: jwksBytes, Now: both.Now}
	onlyHS := JWTConfig{HS256Secret: hsSecret, Now: both.Now}
	strict := both
	strict.Issuer, strict.Audience = "https://auth.example.com", "vellum"
	custom := both
	custom.IdentityClaim, custom.GroupsClaim = "uid", "roles"

	tests := []struct {
		name   string
		cfg    JWTConfig
		token  string
		wantID string
		groups []string
		err    string // substring of the unauthorized error
	}{
		{"HS256", both, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"groups": []any{"writers", "bad name", 3, "editor"}})), "alice", []string{"writers", "editor"}, ""},
		{"RS256 with kid", both, sign(t, jwt.SigningMethodRS256, "rsa-1", rsaKey, claims(nil)), "alice", nil, ""},
		{"RS256 without kid", onlyJWKS, sign(t, jwt.SigningMethodRS256, "", rsaKey, claims(nil)), "alice", nil, ""},
		{"ES256", onlyJWKS, sign(t, jwt.SigningMethodES256, "ec-1", ecKey, claims(map[string]any{"groups": "writers"})), "alice", []string{"writers"}, ""},
		{"expired", both, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"exp": jwtNow.Add(-time.Hour).Unix()})), "", nil, "the JWT has expired (exp 2026-11-23T09:00:00Z)"},
		{"expired within leeway", both, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"exp": jwtNow.Add(-10 * time.Second).Unix()})), "alice", nil, ""},
		{"not yet valid", both, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"nbf": jwtNow.Add(time.Hour).Unix()})), "", nil, "the JWT is not valid yet (nbf 2026-11-23T11:00:00Z)"},
		{"nbf within leeway", both, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"nbf": jwtNow.Add(10 * time.Second).Unix()})), "alice", nil, ""},
		{"no exp", both, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"exp": nil})), "", nil, "no exp claim"},
		{"wrong HS256 secret", both, sign(t, jwt.SigningMethodHS256, "", []byte("another-secret-another-secret-another"), claims(nil)), "", nil, "signature is not valid"},
		{"wrong RSA key", both, sign(t, jwt.SigningMethodRS256, "rsa-1", rsaOther, claims(nil)), "", nil, "signature is not valid"},
		{"wrong RSA key without kid", both, sign(t, jwt.SigningMethodRS256, "", rsaOther, claims(nil)), "", nil, "signature is not valid"},
		{"unknown kid", both, sign(t, jwt.SigningMethodRS256, "rsa-9", rsaKey, claims(nil)), "", nil, `no usable key with kid "rsa-9"`},
		{"tampered payload", both, tamper(sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(nil))), "", nil, "signature is not valid"},
		{"issuer and audience", strict, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"iss": "https://auth.example.com", "aud": []any{"other", "vellum"}})), "alice", nil, ""},
		{"wrong issuer", strict, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"iss": "https://evil.example.com", "aud": "vellum"})), "", nil, `issuer is not "https://auth.example.com"`},
		{"no issuer", strict, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"aud": "vellum"})), "", nil, `no iss claim; its issuer must be "https://auth.example.com"`},
		{"no audience", strict, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"iss": "https://auth.example.com"})), "", nil, `no aud claim; its audience must include "vellum"`},
		{"wrong audience", strict, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"iss": "https://auth.example.com", "aud": "shop"})), "", nil, `audience does not include "vellum"`},
		{"alg none", both, noneToken, "", nil, "alg none"},
		{"alg none with a signature", both, noneWithSig, "", nil, "alg none"},
		{"HS256 signed with the RSA public key (PEM) as secret", onlyJWKS, sign(t, jwt.SigningMethodHS256, "rsa-1", rsaPubPEM, claims(nil)), "", nil, "signed with \"HS256\""},
		{"HS256 signed with the RSA public key (PEM), HS256 enabled", both, sign(t, jwt.SigningMethodHS256, "rsa-1", rsaPubPEM, claims(nil)), "", nil, "signature is not valid"},
		{"HS256 signed with the RSA public key (DER), HS256 enabled", both, sign(t, jwt.SigningMethodHS256, "", rsaPubDER, claims(nil)), "", nil, "signature is not valid"},
		{"HS256 signed with the JWKS as secret", both, sign(t, jwt.SigningMethodHS256, "", jwksBytes, claims(nil)), "", nil, "signature is not valid"},
		{"RS256 when only HS256 is enabled", onlyHS, sign(t, jwt.SigningMethodRS256, "rsa-1", rsaKey, claims(nil)), "", nil, "signed with \"RS256\""},
		{"ES256 naming an RSA kid", both, sign(t, jwt.SigningMethodES256, "rsa-1", ecKey, claims(nil)), "", nil, "not a key for ES256"},
		{"RS512", both, sign(t, jwt.SigningMethodRS512, "rsa-1", rsaKey, claims(nil)), "", nil, "signed with \"RS512\""},
		{"malformed", both, "a.b.c", "", nil, "malformed"},
		{"identity with an @", both, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"sub": "alice@example.com"})), "", nil, `"sub" claim is not a valid identity id`},
		{"identity a number", both, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"sub": 42})), "", nil, `"sub" claim is not a valid identity id`},
		{"no identity", both, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"sub": nil})), "", nil, `no "sub" claim`},
		{"identity everyone", both, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"sub": "everyone"})), "", nil, "reserved"},
		{"identity of a token", both, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"sub": "token-ci"})), "", nil, "reserved"},
		{"custom claims", custom, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"sub": "x@y", "uid": "u-123", "roles": []any{"viewer"}})), "u-123", []string{"viewer"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewJWTVerifier(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := v.Verify(tt.token)
			if tt.err != "" {
				e, ok := err.(*Error)
				if !ok || e.Code != CodeUnauthorized || !strings.Contains(e.Description, tt.err) {
					t.Fatalf("Verify = %v, %v; want unauthorized containing %q", p, err, tt.err)
				}
				if strings.Contains(e.Error(), tt.token) || strings.Contains(e.Error(), strings.Split(tt.token, ".")[len(strings.Split(tt.token, "."))-1]+"\"") {
					t.Errorf("the error repeats the token: %v", e)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.ID != tt.wantID || !p.Authenticated || strings.Join(p.Groups, ",") != strings.Join(tt.groups, ",") || len(p.Roles) != 0 {
				t.Errorf("Verify = %+v, want id %q groups %v", p, tt.wantID, tt.groups)
			}
		})
	}
}

// tamper changes the sub claim of a signed token without re-signing it.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	b = []byte(strings.Replace(string(b), `"alice"`, `"admin"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestJWTConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  JWTConfig
		want string
	}{
		{"nothing", JWTConfig{}, "needs an HS256 secret or a JWKS"},
		{"short secret", JWTConfig{HS256Secret: []byte("short")}, "at least 32"},
		{"JWKS not JSON", JWTConfig{JWKS: []byte("{nope")}, "not a valid JSON Web Key Set"},
		{"JWKS of symmetric keys", JWTConfig{JWKS: mustJWKS(map[string]any{"k": hsSecret})}, "no RSA or P-256 EC public key"},
		{"negative leeway", JWTConfig{HS256Secret: hsSecret, Leeway: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		_, err := NewJWTVerifier(tt.cfg)
		e, ok := err.(*Error)
		if !ok || e.Code != CodeInvalidConfig || !strings.Contains(e.Description, tt.want) {
			t.Errorf("%s: NewJWTVerifier = %v, want invalidConfig containing %q", tt.name, err, tt.want)
		}
	}
}

func TestReadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, append(append([]byte("  \n"), hsSecret...), "\n\t"...), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadHS256SecretFile(secretFile)
	if err != nil || string(got) != string(hsSecret) {
		t.Fatalf("ReadHS256SecretFile = %q, %v; want the trimmed secret", got, err)
	}
	jwksFile := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksFile, jwksBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := ReadJWKSFile(jwksFile)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewJWTVerifier(JWTConfig{HS256Secret: got, JWKS: j, Now: func() time.Time { return jwtNow }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(nil))); err != nil {
		t.Errorf("a token signed with the file's secret: %v", err)
	}
	if _, err := ReadHS256SecretFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("ReadHS256SecretFile of a missing file succeeded")
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	secret, tok, err := NewToken("ci", RoleEditor, "blog", jwtNow)
	if err != nil {
		t.Fatal(err)
	}
	oldSecret, old, err := NewToken("old", RoleViewer, "", jwtNow)
	if err != nil {
		t.Fatal(err)
	}
	revoked := jwtNow.Add(time.Minute)
	old.RevokedAt = &revoked
	v, err := NewJWTVerifier(JWTConfig{HS256Secret: hsSecret, Now: func() time.Time { return jwtNow }})
	if err != nil {
		t.Fatal(err)
	}
	a := &Authenticator{JWT: v, Tokens: TokenMap{tok.Hash: tok, old.Hash: old}}
	noJWT := &Authenticator{Tokens: TokenMap{}}
	noTokens := &Authenticator{JWT: v}

	tests := []struct {
		name  string
		a     *Authenticator
		cred  string
		want  string // principal id
		roles []RoleAssignment
		err   string
	}{
		{"no credential", a, "", Everyone, nil, ""},
		{"robot token", a, secret, "token-ci", []RoleAssignment{{RoleEditor, "blog"}}, ""},
		{"revoked token", a, oldSecret, "", nil, `robot token "old" was revoked at 2026-11-23T10:01:00Z`},
		{"unknown token", a, secret[:len(secret)-1] + "x", "", nil, "not valid"},
		{"not a token", a, "hunter2", "", nil, "robot tokens start with \"vlm_\""},
		{"JWT", a, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(nil)), "alice", nil, ""},
		{"JWT not configured", noJWT, sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(nil)), "", nil, "not configured to verify JWTs"},
		{"tokens not configured", noTokens, secret, "", nil, "accepts no robot tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.a.Authenticate(ctx, tt.cred)
			if tt.err != "" {
				e, ok := err.(*Error)
				if !ok || e.Code != CodeUnauthorized || !strings.Contains(e.Description, tt.err) {
					t.Fatalf("Authenticate = %v, %v; want unauthorized containing %q", p, err, tt.err)
				}
				if tt.cred != "" && strings.Contains(e.Error(), tt.cred) {
					t.Errorf("the error repeats the credential: %v", e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.ID != tt.want || p.Authenticated != (tt.want != Everyone) || len(p.Roles) != len(tt.roles) || (len(tt.roles) > 0 && p.Roles[0] != tt.roles[0]) {
				t.Errorf("Authenticate = %+v, want id %q roles %v", p, tt.want, tt.roles)
			}
		})
	}
}

func TestNewToken(t *testing.T) {
	s1, t1, err := NewToken("deploy", RoleContributor, "", jwtNow)
	if err != nil {
		t.Fatal(err)
	}
	s2, t2, err := NewToken("deploy", RoleContributor, "", jwtNow)
	if err != nil {
		t.Fatal(err)
	}
	if s1 == s2 || t1.Hash == t2.Hash {
		t.Fatal("two tokens have the same secret")
	}
	if !strings.HasPrefix(s1, TokenSecretPrefix) || len(s1) != len(TokenSecretPrefix)+43 || IsJWT(s1) {
		t.Errorf("secret %q: want %q and 43 base64url characters, no dots", s1, TokenSecretPrefix)
	}
	if t1.Hash != HashSecret(s1) || len(t1.Hash) != 64 {
		t.Errorf("hash %q is not the hex SHA-256 of the secret", t1.Hash)
	}
	// The record holds only the hash: nothing of the secret's random part.
	rec, err := json.Marshal(t1)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec), s1[len(TokenSecretPrefix):len(TokenSecretPrefix)+8]) {
		t.Errorf("the stored record %s contains the secret", rec)
	}
	if t1.Identity() != "token-deploy" || t1.Revoked() || !t1.CreatedAt.Equal(jwtNow) {
		t.Errorf("record %+v", t1)
	}
	for _, bad := range []struct {
		name string
		role Role
		want string
	}{
		{"has space", RoleViewer, "token name"},
		{"", RoleViewer, "token name"},
		{strings.Repeat("x", 123), RoleViewer, "token name"},
		{"ok", Role("owner"), `unknown role "owner"`},
	} {
		_, _, err := NewToken(bad.name, bad.role, "", jwtNow)
		e, ok := err.(*Error)
		if !ok || e.Code != CodeInvalidToken || !strings.Contains(e.Description, bad.want) {
			t.Errorf("NewToken(%q, %q) = %v, want invalidToken containing %q", bad.name, bad.role, err, bad.want)
		}
	}
}

// TestJWTUsersEndToEnd runs the seed-000 platform from bearer credentials:
// the application's auth signs JWTs whose groups claim puts every user in
// "authors"; the group's filter lets each edit only their own posts.
func TestJWTUsersEndToEnd(t *testing.T) {
	v, err := NewJWTVerifier(JWTConfig{HS256Secret: hsSecret, Issuer: "https://app.example.com", Now: func() time.Time { return jwtNow }})
	if err != nil {
		t.Fatal(err)
	}
	auth := &Authenticator{JWT: v, Tokens: TokenMap{}}
	policy, errs := LoadPolicy("blog", ACLPublic, []map[string]any{{
		"_id": "_.groups.authors", "_type": GroupType,
		"grants": []any{map[string]any{"filter": `_type == "post" && author == identity()`, "permissions": []any{"read", "create", "update"}}},
	}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	login := func(sub string, groups ...any) *Principal {
		tok := sign(t, jwt.SigningMethodHS256, "", hsSecret, claims(map[string]any{"sub": sub, "iss": "https://app.example.com", "groups": groups}))
		p, err := auth.Authenticate(context.Background(), tok)
		if err != nil {
			t.Fatalf("%s: %v", sub, err)
		}
		return p
	}
	alice, bob, mallory := login("alice", "authors"), login("bob", "authors"), login("mallory")
	post := map[string]any{"_id": "post-1", "_type": "post", "author": "alice", "title": "Hi"}
	edited := map[string]any{"_id": "post-1", "_type": "post", "author": "alice", "title": "Hi!"}
	draft := map[string]any{"_id": "drafts.post-1", "_type": "post", "author": "alice"}

	check := func(what string, err error, allowed bool) {
		t.Helper()
		if (err == nil) != allowed {
			t.Errorf("%s: %v, want allowed=%v", what, err, allowed)
		}
	}
	c := func(p *Principal) *Checker { return policy.Checker(p, jwtNow) }
	_, err = c(alice).Create("post-1", post)
	check("alice creates her post", err, true)
	_, err = c(alice).Update("post-1", post, edited)
	check("alice edits her post", err, true)
	_, err = c(bob).Update("post-1", post, edited)
	check("bob edits alice's post", err, false)
	_, err = c(mallory).Create("post-2", map[string]any{"_id": "post-2", "_type": "post", "author": "mallory"})
	check("mallory (not in authors) creates a post", err, false)
	if _, ok := c(alice).Read(draft); !ok {
		t.Error("alice cannot read her draft")
	}
	if _, ok := c(bob).Read(draft); ok {
		t.Error("bob reads alice's draft")
	}
	if _, ok := c(mallory).Read(post); !ok {
		t.Error("mallory cannot read a published root-path post of a public dataset")
	}
}
