package natsapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/nats-io/nats.go/micro"
	"github.com/vellum-db/vellum"
)

// AuthorizationHeader is the request header that carries the credential, as
// "Bearer <token>".
const AuthorizationHeader = "Authorization"

// AdminIdentity is the identity recorded in the events of requests
// authenticated with the administrator token.
const AdminIdentity = "admin"

// An Authenticator turns the bearer token of a request into the identity the
// engine records. It returns a *vellum.Error with code unauthorized when the
// token is not accepted; token is "" when the request carries none.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (identity string, err error)
}

// AdminToken returns an Authenticator that accepts exactly token, as
// [AdminIdentity], and rejects everything else, including no token.
func AdminToken(token string) Authenticator {
	return adminToken{sum: sha256.Sum256([]byte(token))}
}

type adminToken struct{ sum [32]byte }

func (a adminToken) Authenticate(_ context.Context, token string) (string, error) {
	if token == "" {
		return "", &vellum.Error{
			Code:        "unauthorized",
			Description: "the request carries no credential; send the header \"Authorization: Bearer <token>\" with the administrator token from the daemon's admin.token file",
		}
	}
	// Comparing fixed-size digests keeps the comparison constant-time
	// whatever the length of the offered token.
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], a.sum[:]) != 1 {
		return "", &vellum.Error{
			Code:        "unauthorized",
			Description: "the bearer token is not valid",
		}
	}
	return AdminIdentity, nil
}

// bearerToken returns the token of the request's Authorization header ("" if
// there is none), or an unauthorized error if the header is not of the form
// "Bearer <token>". The header name and the scheme are matched without regard
// to case.
func bearerToken(h micro.Headers) (string, error) {
	var values []string
	for k, v := range h {
		if strings.EqualFold(k, AuthorizationHeader) {
			values = append(values, v...)
		}
	}
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", &vellum.Error{Code: "unauthorized", Description: "the request carries more than one Authorization header"}
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", &vellum.Error{Code: "unauthorized", Description: "the Authorization header is not of the form \"Bearer <token>\""}
	}
	return token, nil
}
