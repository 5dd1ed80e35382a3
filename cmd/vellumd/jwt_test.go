package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestJWTVerifierFlags builds the verifier from flags as run does, and
// checks that it accepts JWTs signed with the keys of the files given and
// the claims named by the flags.
func TestJWTVerifierFlags(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "jwt.secret")
	const secret = "a secret of at least thirty-two bytes"
	if err := os.WriteFile(secretFile, []byte("\r\n\t "+secret+"  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	set, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "EC", "crv": "P-256", "kid": "k1",
		"x": b64(key.X.FillBytes(make([]byte, 32))), "y": b64(key.Y.FillBytes(make([]byte, 32))),
	}}})
	jwksFile := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksFile, set, 0o600); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()
	sign := func(method jwt.SigningMethod, k any, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, claims)
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hs := sign(jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "alice", "exp": exp, "groups": []string{"authors"}})
	es := sign(jwt.SigningMethodES256, key, jwt.MapClaims{"sub": "alice", "exp": exp, "groups": []string{"authors"}})
	esUID := sign(jwt.SigningMethodES256, key, jwt.MapClaims{"uid": "alice", "exp": exp, "iss": "https://auth.example", "aud": "vellum", "teams": "authors"})

	for _, c := range []struct {
		name     string
		cfg      config
		mode     string
		accepted map[string]bool // by JWT
	}{
		{"none", config{jwtIdentity: "sub", jwtGroups: "groups"}, "off", nil},
		{"HS256 secret with white space around it", config{jwtSecretFile: secretFile, jwtIdentity: "sub", jwtGroups: "groups"}, "HS256",
			map[string]bool{hs: true, es: false, esUID: false}},
		{"JWKS", config{jwksFile: jwksFile, jwtIdentity: "sub", jwtGroups: "groups"}, "RS256, ES256",
			map[string]bool{hs: false, es: true, esUID: false}},
		{"both", config{jwtSecretFile: secretFile, jwksFile: jwksFile, jwtIdentity: "sub", jwtGroups: "groups"}, "HS256, RS256, ES256",
			map[string]bool{hs: true, es: true, esUID: false}},
		{"claims, issuer and audience from flags", config{jwksFile: jwksFile, jwtIdentity: "uid", jwtGroups: "teams", jwtIssuer: "https://auth.example", jwtAudience: "vellum"}, "RS256, ES256",
			map[string]bool{hs: false, es: false, esUID: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := jwtVerifier(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := jwtMode(c.cfg); got != c.mode {
				t.Errorf("jwtMode = %q, want %q", got, c.mode)
			}
			if c.accepted == nil {
				if v != nil {
					t.Error("a verifier without a key source")
				}
				return
			}
			for tok, want := range c.accepted {
				p, err := v.Verify(tok)
				if (err == nil) != want {
					t.Errorf("Verify(%.20s…) = %v, want accepted=%v", tok, err, want)
					continue
				}
				if err == nil && (p.ID != "alice" || len(p.Groups) != 1 || p.Groups[0] != "authors") {
					t.Errorf("principal = %+v, want alice in authors", p)
				}
			}
		})
	}
}
