package authz

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// DefaultLeeway is the clock skew allowed when checking a JWT's exp and
// nbf: a token is accepted until 30 seconds after it expires and from 30
// seconds before it becomes valid.
const DefaultLeeway = 30 * time.Second

// minHS256SecretBytes is the shortest HS256 secret accepted: RFC 7518
// (3.2) requires a key at least as long as the hash, 256 bits.
const minHS256SecretBytes = 32

// A JWTConfig says how end-user JWTs are verified. At least one of
// HS256Secret and JWKS must be set; each enables only its own algorithms,
// so a token can never be verified with a key of the other kind
// (algorithm confusion).
type JWTConfig struct {
	// HS256Secret enables HS256 with this shared secret (see
	// ReadHS256SecretFile). It must be at least 32 bytes.
	HS256Secret []byte
	// JWKS enables RS256 and ES256 with the RSA and P-256 EC public keys of
	// this JSON Web Key Set (see ReadJWKSFile). Other keys are ignored.
	JWKS []byte
	// Issuer and Audience, when set, must match the iss claim and be
	// among the aud claim.
	Issuer, Audience string
	// IdentityClaim names the claim holding the identity id; "" means
	// "sub". Its value must be 1 to 128 of a-zA-Z0-9_-, and not
	// "everyone", "authenticated" or start with "token-".
	IdentityClaim string
	// GroupsClaim names the claim holding the user's group names (an array
	// of strings, or one string); "" means "groups". Names that are not
	// valid group names are ignored.
	GroupsClaim string
	// Leeway is the clock skew allowed on exp and nbf; 0 means
	// DefaultLeeway.
	Leeway time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// ReadHS256SecretFile reads an HS256 secret: the file's content with
// surrounding white space trimmed.
func ReadHS256SecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Code: CodeInvalidConfig, Grant: -1, Description: fmt.Sprintf("reading the HS256 secret: %v", err)}
	}
	return bytes.TrimSpace(b), nil
}

// ReadJWKSFile reads a JSON Web Key Set from a file.
func ReadJWKSFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Code: CodeInvalidConfig, Grant: -1, Description: fmt.Sprintf("reading the JWKS: %v", err)}
	}
	return b, nil
}

// A JWTVerifier verifies end-user JWTs and turns them into principals. It
// is safe for concurrent use.
type JWTVerifier struct {
	secret        []byte
	jwks          keyfunc.Keyfunc
	methods       []string
	parser        *jwt.Parser
	issuer        string
	audience      string
	identityClaim string
	groupsClaim   string
}

// NewJWTVerifier checks cfg and returns its verifier. The error is an
// *Error with code invalidConfig.
func NewJWTVerifier(cfg JWTConfig) (*JWTVerifier, error) {
	bad := func(format string, args ...any) (*JWTVerifier, error) {
		return nil, &Error{Code: CodeInvalidConfig, Grant: -1, Description: fmt.Sprintf(format, args...)}
	}
	v := &JWTVerifier{
		issuer:        cfg.Issuer,
		audience:      cfg.Audience,
		identityClaim: cfg.IdentityClaim,
		groupsClaim:   cfg.GroupsClaim,
	}
	if v.identityClaim == "" {
		v.identityClaim = "sub"
	}
	if v.groupsClaim == "" {
		v.groupsClaim = "groups"
	}
	if cfg.HS256Secret == nil && cfg.JWKS == nil {
		return bad("JWT verification needs an HS256 secret or a JWKS")
	}
	if cfg.HS256Secret != nil {
		if len(cfg.HS256Secret) < minHS256SecretBytes {
			return bad("the HS256 secret is %d bytes long; it must be at least %d (256 bits, RFC 7518)", len(cfg.HS256Secret), minHS256SecretBytes)
		}
		v.secret = bytes.Clone(cfg.HS256Secret)
		v.methods = append(v.methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKS != nil {
		k, err := keyfunc.NewJWKSetJSON(json.RawMessage(cfg.JWKS))
		if err != nil {
			return bad("the JWKS is not a valid JSON Web Key Set: %v", err)
		}
		set, err := k.VerificationKeySet(context.Background())
		if err != nil {
			return bad("the JWKS cannot be read: %v", err)
		}
		usable := 0
		for _, key := range set.Keys {
			if isRSA(key) || isP256(key) {
				usable++
			}
		}
		if usable == 0 {
			return bad("the JWKS holds no RSA or P-256 EC public key")
		}
		v.jwks = k
		v.methods = append(v.methods, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg())
	}
	leeway := cfg.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	if leeway < 0 {
		return bad("the JWT leeway %v is negative", leeway)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithLeeway(leeway),
		jwt.WithExpirationRequired(),
	}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

func isRSA(key any) bool { _, ok := key.(*rsa.PublicKey); return ok }

func isP256(key any) bool {
	k, ok := key.(*ecdsa.PublicKey)
	return ok && k.Curve == elliptic.P256()
}

// key returns the verification key of t. Each algorithm has its own kind
// of key, so an HS256 token is never checked against a public key used as
// an HMAC secret, nor an RS256 or ES256 token against the HS256 secret.
func (v *JWTVerifier) key(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	switch alg {
	case jwt.SigningMethodHS256.Alg():
		if v.secret == nil {
			return nil, errors.New("HS256 is not enabled")
		}
		return v.secret, nil
	case jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg():
		if v.jwks == nil {
			return nil, fmt.Errorf("%s is not enabled", alg)
		}
		fits := isRSA
		if alg == jwt.SigningMethodES256.Alg() {
			fits = isP256
		}
		k, err := v.jwks.Keyfunc(t)
		if err != nil {
			if kid, ok := t.Header["kid"].(string); ok {
				return nil, fmt.Errorf("no usable key with kid %q in the JWKS", kid)
			}
			return nil, errors.New("no usable key in the JWKS")
		}
		if set, ok := k.(jwt.VerificationKeySet); ok {
			var keys []jwt.VerificationKey
			for _, key := range set.Keys {
				if fits(key) {
					keys = append(keys, key)
				}
			}
			if len(keys) == 0 {
				return nil, fmt.Errorf("the JWKS has no key for %s", alg)
			}
			return jwt.VerificationKeySet{Keys: keys}, nil
		}
		if !fits(k) {
			return nil, fmt.Errorf("the JWKS key named by kid is not a key for %s", alg)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%s is not accepted", alg)
}

// Verify verifies a JWT and returns its principal: authenticated, with the
// identity claim as its id and the groups claim as its group names. The
// error is an *Error with code unauthorized that says what is wrong (and
// never repeats the token).
func (v *JWTVerifier) Verify(token string) (*Principal, error) {
	if alg, ok := peekAlg(token); ok && !slices.Contains(v.methods, alg) {
		if strings.EqualFold(alg, "none") {
			return nil, unauthorized("the JWT is not signed (alg none); unsigned JWTs are never accepted")
		}
		return nil, unauthorized("the JWT is signed with %s; this daemon accepts %s", safeText(alg), strings.Join(v.methods, ", "))
	}
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, v.key)
	if err != nil {
		return nil, v.describe(err, claims)
	}
	raw, present := claims[v.identityClaim]
	id, _ := raw.(string)
	switch {
	case !present:
		return nil, unauthorized("the JWT has no %q claim, which holds the identity", v.identityClaim)
	case !isName(id):
		return nil, unauthorized("the JWT's %q claim is not a valid identity id: it must be 1 to 128 of a-z, A-Z, 0-9, _ and -", v.identityClaim)
	case id == Everyone || id == Authenticated || strings.HasPrefix(id, TokenIdentityPrefix):
		return nil, unauthorized("the JWT's %q claim %q is reserved (everyone, authenticated and ids starting with %q are not end users)", v.identityClaim, id, TokenIdentityPrefix)
	}
	p := &Principal{ID: id, Authenticated: true}
	switch g := claims[v.groupsClaim].(type) {
	case string:
		if isName(g) {
			p.Groups = []string{g}
		}
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok && isName(s) {
				p.Groups = append(p.Groups, s)
			}
		}
	}
	return p, nil
}

func (v *JWTVerifier) describe(err error, claims jwt.MapClaims) *Error {
	at := func(name string) string {
		d, e := claims.GetExpirationTime()
		if name == "nbf" {
			d, e = claims.GetNotBefore()
		}
		if e != nil || d == nil {
			return ""
		}
		return " (" + name + " " + d.UTC().Format(time.RFC3339) + ")"
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthorized("the JWT is malformed: %s", cause(err))
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return unauthorized("the JWT cannot be verified: %s", cause(err))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return unauthorized("the JWT's signature is not valid")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case claims["exp"] == nil:
			return unauthorized("the JWT has no exp claim; JWTs must expire")
		case v.issuer != "" && claims["iss"] == nil:
			return unauthorized("the JWT has no iss claim; its issuer must be %q", v.issuer)
		case v.audience != "" && claims["aud"] == nil:
			return unauthorized("the JWT has no aud claim; its audience must include %q", v.audience)
		}
		return unauthorized("the JWT lacks a required claim: %s", cause(err))
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthorized("the JWT has expired%s", at("exp"))
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return unauthorized("the JWT is not valid yet%s", at("nbf"))
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return unauthorized("the JWT's issuer is not %q", v.issuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return unauthorized("the JWT's audience does not include %q", v.audience)
	}
	return unauthorized("the JWT is not valid: %s", cause(err))
}

// cause returns the innermost message of a jwt error, which describes the
// problem without quoting the token.
func cause(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// peekAlg returns the alg of a JWT's header without verifying anything,
// for a clear error about the algorithm.
func peekAlg(token string) (string, bool) {
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return "", false
	}
	return h.Alg, true
}

// safeText shortens untrusted text for a message.
func safeText(s string) string {
	if len(s) > 20 {
		s = s[:20] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// IsJWT reports whether a bearer credential has the shape of a JWT: three
// parts separated by dots. Robot token secrets have no dots.
func IsJWT(credential string) bool { return strings.Count(credential, ".") == 2 }
