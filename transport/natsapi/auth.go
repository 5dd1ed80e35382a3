package natsapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/nats-io/nats.go/micro"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
)

// AuthorizationHeader is the request header that carries the credential, as
// "Bearer <token>".
const AuthorizationHeader = "Authorization"

// An Authenticator turns the bearer credential of a request ("" when it
// carries none) into the principal the engine authorizes and records. It
// returns an error with code unauthorized when the credential is not
// accepted. *authz.Authenticator is one.
type Authenticator interface {
	Authenticate(ctx context.Context, credential string) (*authz.Principal, error)
}

// AdminPrincipal is the principal of requests made with the daemon's
// administrator token: the administrator role for every dataset, recorded
// in events as the identity "token-admin".
var AdminPrincipal = &authz.Principal{
	ID:            authz.TokenIdentityPrefix + "admin",
	Authenticated: true,
	Roles:         []authz.RoleAssignment{{Role: authz.RoleAdministrator}},
}

// AdminToken returns an Authenticator that accepts token as
// [AdminPrincipal] and hands every other credential to next. With a nil
// next, every other credential, and no credential, is unauthorized.
func AdminToken(token string, next Authenticator) Authenticator {
	return adminToken{sum: sha256.Sum256([]byte(token)), next: next}
}

type adminToken struct {
	sum  [32]byte
	next Authenticator
}

func (a adminToken) Authenticate(ctx context.Context, credential string) (*authz.Principal, error) {
	// Comparing fixed-size digests keeps the comparison constant-time
	// whatever the length of the offered credential.
	sum := sha256.Sum256([]byte(credential))
	if credential != "" && subtle.ConstantTimeCompare(sum[:], a.sum[:]) == 1 {
		return AdminPrincipal, nil
	}
	if a.next != nil {
		return a.next.Authenticate(ctx, credential)
	}
	if credential == "" {
		return nil, &vellum.Error{
			Code:        authz.CodeUnauthorized,
			Description: "the request carries no credential; send the header \"Authorization: Bearer <token>\" with the administrator token from the daemon's admin.token file",
		}
	}
	return nil, &vellum.Error{Code: authz.CodeUnauthorized, Description: "the bearer token is not valid"}
}

// bearerToken returns the token of the request's Authorization header ("" if
// there is none), or an unauthorized error if the header is not of the form
// "Bearer <token>". The header name and the scheme are matched without regard
// to case.
func bearerToken(h micro.Headers) (string, error) {
	var value string
	n := 0
	for k, v := range h {
		if strings.EqualFold(k, AuthorizationHeader) {
			if n += len(v); n == 1 {
				value = v[0]
			}
		}
	}
	switch n {
	case 0:
		return "", nil
	case 1:
	default:
		return "", &vellum.Error{Code: authz.CodeUnauthorized, Description: "the request carries more than one Authorization header"}
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(value), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", &vellum.Error{Code: authz.CodeUnauthorized, Description: "the Authorization header is not of the form \"Bearer <token>\""}
	}
	return token, nil
}
