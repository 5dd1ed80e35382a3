package authz

import (
	"context"
	"fmt"
	"time"
)

// An Authenticator turns the bearer credential of a request into a
// Principal: no credential is everyone; a JWT (three dot-separated parts)
// is verified by JWT; anything else is a robot token secret, looked up by
// its hash in Tokens. It is safe for concurrent use if Tokens is.
type Authenticator struct {
	JWT    *JWTVerifier // nil: JWTs are not accepted
	Tokens TokenStore   // nil: robot tokens are not accepted
}

// Authenticate returns the principal of credential ("" for none). The error
// is an *Error with code unauthorized and a sentence that never repeats the
// credential, or the token store's own error.
func (a *Authenticator) Authenticate(ctx context.Context, credential string) (*Principal, error) {
	switch {
	case credential == "":
		return Anonymous(), nil
	case IsJWT(credential):
		if a.JWT == nil {
			return nil, unauthorized("the credential is a JWT, but this daemon is not configured to verify JWTs (--jwt-hs256-secret-file or --jwks-file)")
		}
		return a.JWT.Verify(credential)
	}
	if a.Tokens == nil {
		return nil, unauthorized("the bearer token is not valid: this daemon accepts no robot tokens")
	}
	if !looksLikeTokenSecret(credential) {
		return nil, unauthorized("the bearer token is not valid: robot tokens start with %q and are %d characters long", TokenSecretPrefix, len(TokenSecretPrefix)+43)
	}
	tok, ok, err := a.Tokens.LookupToken(ctx, HashSecret(credential))
	if err != nil {
		return nil, fmt.Errorf("looking up a robot token: %w", err)
	}
	if !ok {
		return nil, unauthorized("the bearer token is not valid")
	}
	if tok.Revoked() {
		return nil, unauthorized("the robot token %q was revoked at %s", tok.Name, tok.RevokedAt.UTC().Format(time.RFC3339))
	}
	return tok.Principal(), nil
}
