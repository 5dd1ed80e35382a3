package natsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/vellum-db/vellum/authz"
)

// The access-control endpoints: robot tokens, a dataset's acl mode and
// explanations. The engine decides who may use them (the administrator
// role); this file only decodes the requests and encodes the answers.

// TokenCreateRequest is the body of a token creation request.
type TokenCreateRequest struct {
	Name    string `json:"name"`
	Role    string `json:"role"`              // a built-in role: administrator, editor, developer, contributor, viewer
	Dataset string `json:"dataset,omitempty"` // the dataset of the role; "" for every dataset
}

// TokenInfo describes a robot token: its stored record without the hash of
// its secret. The secret itself is never stored.
type TokenInfo struct {
	Name      string     `json:"name"`
	Identity  string     `json:"identity"` // "token-" + Name: what events record
	Role      string     `json:"role"`
	Dataset   string     `json:"dataset,omitempty"` // "" for every dataset
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

func tokenInfo(t authz.Token) TokenInfo {
	return TokenInfo{
		Name:      t.Name,
		Identity:  t.Identity(),
		Role:      string(t.Role),
		Dataset:   t.Dataset,
		CreatedAt: t.CreatedAt,
		RevokedAt: t.RevokedAt,
	}
}

// TokenCreateResponse is the body of a token creation response. Secret is
// the bearer credential of the new token; this response is the only place
// it ever appears.
type TokenCreateResponse struct {
	Secret string    `json:"secret"`
	Token  TokenInfo `json:"token"`
}

// TokenList is the body of a token list response, sorted by name.
type TokenList struct {
	Tokens []TokenInfo `json:"tokens"`
}

// TokenRevokeRequest is the body of a token revocation request.
type TokenRevokeRequest struct {
	Name string `json:"name"`
}

// DatasetACLRequest is the body of a dataset acl change request.
type DatasetACLRequest struct {
	Name string `json:"name"`
	ACL  string `json:"aclMode"` // public or private
}

// ExplainRequest is the body of an explain request: may the identity As
// (with the JWT groups Groups) do Action to the document ID? For update,
// Patch is a Sanity patch body ({"set":{...}}) giving the document after
// the change; for the create of a document that does not exist, Patch is
// the new document.
type ExplainRequest struct {
	As     string          `json:"as"`
	Groups []string        `json:"groups,omitempty"`
	ID     string          `json:"id"`
	Action string          `json:"action"` // read, create, update or delete
	Patch  json.RawMessage `json:"patch,omitempty"`
}

func (s *Server) createToken(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	var r TokenCreateRequest
	if err := decodeStrict(req.Data(), &r, `{"name":"<name>","role":"<role>","dataset":"<dataset>"}`); err != nil {
		return nil, err
	}
	secret, tok, err := s.eng.CreateToken(ctx, p, r.Name, r.Role, r.Dataset)
	if err != nil {
		return nil, err
	}
	return marshal(TokenCreateResponse{Secret: secret, Token: tokenInfo(tok)})
}

func (s *Server) listTokens(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	if err := decodeEmpty(req.Data()); err != nil {
		return nil, err
	}
	toks, err := s.eng.Tokens(ctx, p)
	if err != nil {
		return nil, err
	}
	out := TokenList{Tokens: make([]TokenInfo, len(toks))}
	for i, t := range toks {
		out.Tokens[i] = tokenInfo(t)
	}
	return marshal(out)
}

func (s *Server) revokeToken(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	var r TokenRevokeRequest
	if err := decodeStrict(req.Data(), &r, `{"name":"<name>"}`); err != nil {
		return nil, err
	}
	tok, err := s.eng.RevokeToken(ctx, p, r.Name)
	if err != nil {
		return nil, err
	}
	return marshal(tokenInfo(tok))
}

func (s *Server) setDatasetACL(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	var r DatasetACLRequest
	if err := decodeStrict(req.Data(), &r, `{"name":"<dataset>","aclMode":"public|private"}`); err != nil {
		return nil, err
	}
	if err := ValidateDatasetName(r.Name); err != nil {
		return nil, err
	}
	info, err := s.eng.SetDatasetACL(ctx, p, r.Name, r.ACL)
	if err != nil {
		return nil, err
	}
	return marshal(info)
}

func (s *Server) explain(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	dataset, err := datasetFromSubject(req.Subject(), opExplain)
	if err != nil {
		return nil, err
	}
	var r ExplainRequest
	if err := decodeStrict(req.Data(), &r, `{"as":"<identity>","groups":["<group>",...],"id":"<document id>","action":"read|create|update|delete","patch":{...}}`); err != nil {
		return nil, err
	}
	// An unknown action or a malformed "as" is invalidRequest (400).
	as, err := s.eng.PrincipalFor(r.As, r.Groups)
	if err != nil {
		return nil, err
	}
	x, err := s.eng.Explain(ctx, p, dataset, as, r.ID, r.Action, r.Patch)
	if err != nil {
		return nil, err
	}
	return marshal(x)
}

// decodeEmpty accepts an empty body or an empty JSON object.
func decodeEmpty(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var empty struct{}
	return decodeStrict(data, &empty, `an empty body or {}`)
}
