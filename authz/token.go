package authz

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// TokenSecretPrefix starts every robot token secret, so that a leaked
// secret is recognisable (secret scanners, logs) and cannot be mistaken for
// a JWT (it has no dots).
const TokenSecretPrefix = "vlm_"

// tokenSecretBytes is the entropy of a secret: 256 bits.
const tokenSecretBytes = 32

// A Token is the stored record of a robot token. The secret itself is never
// stored, only its hash (HashSecret).
//
// SHA-256 without salt or stretching is enough for these secrets: they are
// 256 random bits, so there is nothing to guess that a slow hash would slow
// down, and a deterministic hash is what lets a request's secret be looked
// up in one read. (Passwords, which people choose, need a slow salted hash;
// these are not passwords.)
type Token struct {
	Name      string     `json:"name"`              // a-zA-Z0-9_-; the identity is "token-" + Name
	Hash      string     `json:"hash"`              // hex SHA-256 of the secret
	Role      Role       `json:"role"`              // one built-in role
	Dataset   string     `json:"dataset,omitempty"` // the dataset of the role, "" for all datasets
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"` // nil while the token is valid
}

// NewToken makes a robot token: a fresh secret (from crypto/rand, with
// TokenSecretPrefix), to be shown once, and the record to store. name must
// be 1 to 128 of a-zA-Z0-9_-, role a built-in role; dataset may be "" (all
// datasets). Whether the name is taken, and whether the dataset exists, is
// for the caller to check.
func NewToken(name string, role Role, dataset string, now time.Time) (secret string, tok Token, err error) {
	if !isName(name) || len(name)+len(TokenIdentityPrefix) > 128 {
		return "", Token{}, &Error{Code: CodeInvalidToken, Grant: -1,
			Description: fmt.Sprintf("token name %q is not valid: use 1 to %d of a-z, A-Z, 0-9, _ and -", name, 128-len(TokenIdentityPrefix))}
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", Token{}, err
	}
	var b [tokenSecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Token{}, fmt.Errorf("generating a token secret: %w", err)
	}
	secret = TokenSecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, Token{Name: name, Hash: HashSecret(secret), Role: role, Dataset: dataset, CreatedAt: now.UTC()}, nil
}

// HashSecret returns the stored form of a token secret: its SHA-256, in hex.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Revoked reports whether the token has been revoked.
func (t Token) Revoked() bool { return t.RevokedAt != nil }

// Identity returns the token's identity id, "token-" + its name.
func (t Token) Identity() string { return TokenIdentityPrefix + t.Name }

// Principal returns the principal of a request made with the token.
func (t Token) Principal() *Principal {
	return &Principal{
		ID:            t.Identity(),
		Authenticated: true,
		Roles:         []RoleAssignment{{Role: t.Role, Dataset: t.Dataset}},
	}
}

// A TokenStore finds a token record by the hash of its secret. The engine
// backs it with its stored records; ok is false when there is none.
type TokenStore interface {
	LookupToken(ctx context.Context, hash string) (tok Token, ok bool, err error)
}

// TokenMap is a TokenStore held in memory, keyed by hash. It suits tests
// and a daemon that loads its token records at start and on change (build
// a new map and swap it).
type TokenMap map[string]Token

// LookupToken returns the token whose hash is hash.
func (m TokenMap) LookupToken(_ context.Context, hash string) (Token, bool, error) {
	t, ok := m[hash]
	return t, ok, nil
}

// looksLikeTokenSecret reports whether s has the shape of a secret made by
// NewToken.
func looksLikeTokenSecret(s string) bool {
	rest, ok := strings.CutPrefix(s, TokenSecretPrefix)
	return ok && len(rest) == base64.RawURLEncoding.EncodedLen(tokenSecretBytes)
}
