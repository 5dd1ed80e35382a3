package natsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
)

// DefaultTimeout bounds a Client request whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// InboxRoot is the first token of every client's inbox prefix.
const InboxRoot = "_INBOX"

// MinInboxSecret is the least number of characters of the secret token of
// an inbox prefix (_INBOX.<secret>); NewInboxPrefix makes 32.
const MinInboxSecret = 22

// NewInboxPrefix returns a fresh, unguessable inbox prefix: "_INBOX." and
// 32 hexadecimal digits from crypto/rand.
func NewInboxPrefix() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return InboxRoot + "." + hex.EncodeToString(b[:])
}

// ValidateInboxPrefix reports whether prefix is "_INBOX.<secret>" with a
// secret of at least MinInboxSecret characters from a-z, A-Z, 0-9, '_' and
// '-' (one subject token, no wildcard).
func ValidateInboxPrefix(prefix string) error {
	secret, ok := strings.CutPrefix(prefix, InboxRoot+".")
	if !ok {
		return fmt.Errorf("inbox prefix %q does not start with %s.", prefix, InboxRoot)
	}
	if len(secret) < MinInboxSecret {
		return fmt.Errorf("inbox prefix %q: its secret has %d characters, at least %d are needed", prefix, len(secret), MinInboxSecret)
	}
	for i := 0; i < len(secret); i++ {
		c := secret[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("inbox prefix %q: byte %d of its secret is %q; only a-z, A-Z, 0-9, '_' and '-' are allowed", prefix, i, rune(c))
		}
	}
	return nil
}

// ClientOptions returns the connection options of a client of vellumd's
// embedded NATS server: a fresh inbox prefix (NewInboxPrefix) that the
// connection uses for its replies and declares as its user name. vellumd
// lets such a connection publish requests to the service and subscribe to
// nothing but that prefix, so no other connection can read its replies
// (docs/nats.md, "Connecting"). With a NATS server that does not check
// user names (an external one), the options are harmless.
func ClientOptions() []nats.Option {
	p := NewInboxPrefix()
	return []nats.Option{nats.UserInfo(p, ""), nats.CustomInboxPrefix(p)}
}

// A Client sends requests to the vellum service over a NATS connection.
//
// A request the service rejects returns a *vellum.Error (the typed error
// body; Status(err.Code) is the status it came with). A request that cannot
// be delivered or answered returns the NATS error, wrapped:
// nats.ErrNoResponders when no vellumd serves the subject, and
// context.DeadlineExceeded or nats.ErrTimeout when none answered in time.
type Client struct {
	nc    *nats.Conn
	token string
}

// NewClient returns a Client that sends token as its bearer credential ("" sends none).
func NewClient(nc *nats.Conn, token string) *Client {
	return &Client{nc: nc, token: token}
}

// Mutate sends a transaction body to dataset and returns the result JSON
// ({"transactionId":...,"results":[...]}) as the service sent it.
func (c *Client) Mutate(ctx context.Context, dataset string, tx []byte) (json.RawMessage, error) {
	subject, err := MutateSubject(dataset)
	if err != nil {
		return nil, err
	}
	return c.request(ctx, subject, tx)
}

// Get returns the documents of dataset with the given ids, in their order,
// seen from perspective ("" for the default, raw); missing ones are omitted.
func (c *Client) Get(ctx context.Context, dataset string, ids []string, perspective string) ([]json.RawMessage, error) {
	subject, err := GetSubject(dataset)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(GetRequest{IDs: ids, Perspective: perspective})
	if err != nil {
		return nil, err
	}
	data, err := c.request(ctx, subject, body)
	if err != nil {
		return nil, err
	}
	var r GetResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("natsapi: the get response is not {\"documents\":[...]}: %w", err)
	}
	return r.Documents, nil
}

// CreateDataset creates a dataset; acl is "public", "private" or "" for the
// engine's default.
func (c *Client) CreateDataset(ctx context.Context, name, acl string) (vellum.DatasetInfo, error) {
	var info vellum.DatasetInfo
	body, err := json.Marshal(CreateDatasetRequest{Name: name, ACL: acl})
	if err != nil {
		return info, err
	}
	data, err := c.request(ctx, SubjectDatasetCreate, body)
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, fmt.Errorf("natsapi: the dataset create response is not a dataset: %w", err)
	}
	return info, nil
}

// Datasets lists the datasets.
func (c *Client) Datasets(ctx context.Context) ([]vellum.DatasetInfo, error) {
	data, err := c.request(ctx, SubjectDatasetList, nil)
	if err != nil {
		return nil, err
	}
	var r DatasetList
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("natsapi: the dataset list response is not {\"datasets\":[...]}: %w", err)
	}
	return r.Datasets, nil
}

func (c *Client) request(ctx context.Context, subject string, body []byte) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	msg := nats.NewMsg(subject)
	msg.Data = body
	if c.token != "" {
		msg.Header.Set(AuthorizationHeader, "Bearer "+c.token)
	}
	reply, err := c.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("request on %s: %w", subject, err)
	}
	if reply.Header.Get(micro.ErrorCodeHeader) == "" {
		return reply.Data, nil
	}
	return nil, decodeError(reply)
}

// decodeError turns an error response into the *vellum.Error it carries, or,
// if its body is not a typed error (a reply from something that is not
// vellumd), into one built from micro's headers.
func decodeError(reply *nats.Msg) error {
	var body errorBody
	if err := json.Unmarshal(reply.Data, &body); err == nil && body.Error != nil && body.Error.Code != "" {
		return body.Error
	}
	status := reply.Header.Get(micro.ErrorCodeHeader)
	desc := reply.Header.Get(micro.ErrorHeader)
	if _, err := strconv.Atoi(status); err != nil {
		status = "?"
	}
	return &vellum.Error{
		Code:        "internal",
		Description: fmt.Sprintf("the service answered with status %s (%s) and a body that is not a typed error", status, desc),
	}
}

// IsUnreachable reports whether err says that no service answered: nobody
// serves the subject, or nobody answered in time.
func IsUnreachable(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded)
}

// CreateToken creates a robot token with a built-in role for dataset (""
// for every dataset) and returns its secret, shown only now, and its record.
func (c *Client) CreateToken(ctx context.Context, name, role, dataset string) (TokenCreateResponse, error) {
	var r TokenCreateResponse
	err := c.call(ctx, SubjectTokenCreate, TokenCreateRequest{Name: name, Role: role, Dataset: dataset}, &r, "a created token")
	return r, err
}

// Tokens lists the robot tokens, by name, revoked ones included.
func (c *Client) Tokens(ctx context.Context) ([]TokenInfo, error) {
	var r TokenList
	err := c.call(ctx, SubjectTokenList, nil, &r, `{"tokens":[...]}`)
	return r.Tokens, err
}

// RevokeToken revokes the robot token name and returns its record: the
// token's next request fails.
func (c *Client) RevokeToken(ctx context.Context, name string) (TokenInfo, error) {
	var r TokenInfo
	err := c.call(ctx, SubjectTokenRevoke, TokenRevokeRequest{Name: name}, &r, "a token")
	return r, err
}

// SetDatasetACL sets a dataset's acl mode, "public" or "private".
func (c *Client) SetDatasetACL(ctx context.Context, name, acl string) (vellum.DatasetInfo, error) {
	var info vellum.DatasetInfo
	if err := ValidateDatasetName(name); err != nil {
		return info, err
	}
	err := c.call(ctx, SubjectDatasetACL, DatasetACLRequest{Name: name, ACL: acl}, &info, "a dataset")
	return info, err
}

// Explain asks whether the identity of r may do its action to a document
// of dataset, with every grant of that identity and why it matched or not.
func (c *Client) Explain(ctx context.Context, dataset string, r ExplainRequest) (*authz.Explanation, error) {
	subject, err := ExplainSubject(dataset)
	if err != nil {
		return nil, err
	}
	var x authz.Explanation
	if err := c.call(ctx, subject, r, &x, "an explanation"); err != nil {
		return nil, err
	}
	return &x, nil
}

// call sends req (nil for an empty body) as JSON on subject and decodes
// the response into resp.
func (c *Client) call(ctx context.Context, subject string, req, resp any, what string) error {
	var body []byte
	if req != nil {
		var err error
		if body, err = json.Marshal(req); err != nil {
			return err
		}
	}
	data, err := c.request(ctx, subject, body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, resp); err != nil {
		return fmt.Errorf("natsapi: the response on %s is not %s: %w", subject, what, err)
	}
	return nil
}
