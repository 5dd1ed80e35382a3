package natsauth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/vellum-db/vellum/transport/natsapi"
)

// The user names with a meaning of their own. Any other user name must be
// the connection's inbox prefix (natsapi.ValidateInboxPrefix); without a
// user name, a token is taken as the prefix (the nats CLI sends a --user
// given without --password as a token).
const (
	// AdminUser connects with the daemon's administrator token as its
	// password and may publish and subscribe to anything: for trusted
	// consumers of the event streams (replicas, auditors) and operators.
	AdminUser = "admin"
	// ServiceUser is vellumd's service connection.
	ServiceUser = "vellumd"
	// PublisherUser is vellumd's event stream publisher.
	PublisherUser = "vellumd-jetstream"
)

// registeredClient is the name under which a client connection is known to
// the server once admitted (its real user name, the inbox prefix, is a
// secret and must not show up in the server's monitoring or events).
const registeredClient = "client"

// ClientPermissions are the permissions of a client connection that
// declared inboxPrefix: publish only to the service's subjects (never to
// the event streams) and to micro's discovery subjects; subscribe only
// under its own inbox prefix; answer a message it received (a listener's
// heartbeat) once, within ResponseExpiry, on the reply subject the message
// names (NATS's allow_responses).
func ClientPermissions(inboxPrefix string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{natsapi.Prefix + ".>", "$SRV.>"},
			Deny:  []string{natsapi.EventSubjectPrefix + ">"},
		},
		Subscribe: &server.SubjectPermission{Allow: []string{inboxPrefix + ".>"}},
		Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: ResponseExpiry},
	}
}

// ResponseExpiry is how long a client may answer a message it received.
const ResponseExpiry = time.Minute

// ServicePermissions are the permissions of vellumd's service connection.
// It answers requests on the reply subjects their senders choose, so it
// may not publish where an answer could do harm: into the event streams or
// to the JetStream, KV, object store or system APIs.
func ServicePermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{">"},
			Deny:  []string{natsapi.EventSubjectPrefix + ">", "$JS.>", "$KV.>", "$O.>", "$SYS.>"},
		},
		Subscribe: &server.SubjectPermission{Allow: []string{">"}},
	}
}

// An Authenticator admits the connections to the embedded NATS server and
// gives each its permissions (server.Options.CustomClientAuthentication).
type Authenticator struct {
	internal [32]byte // SHA-256 of the password of vellumd's own connections
	admin    [32]byte // SHA-256 of the administrator token; zero: no admin user
	secret   string   // the password of vellumd's own connections
	log      *slog.Logger
}

// New returns an Authenticator that admits the administrator with
// adminToken ("" admits no administrator), vellumd's own connections with a
// fresh random password (ServiceOptions, PublisherOptions) and clients that
// declare a valid inbox prefix as their user name. Refused connections are
// logged on log (nil: slog.Default()), without credentials.
func New(adminToken string, log *slog.Logger) *Authenticator {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	a := &Authenticator{secret: hex.EncodeToString(b[:]), log: log}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.internal = sha256.Sum256([]byte(a.secret))
	if adminToken != "" {
		a.admin = sha256.Sum256([]byte(adminToken))
	}
	return a
}

// ServiceOptions are the credentials of vellumd's service connection.
func (a *Authenticator) ServiceOptions() nats.Option { return nats.UserInfo(ServiceUser, a.secret) }

// PublisherOptions are the credentials of vellumd's event publisher.
func (a *Authenticator) PublisherOptions() nats.Option {
	return nats.UserInfo(PublisherUser, a.secret)
}

// Check admits or refuses a connection and registers its permissions. It
// implements server.Authentication.
func (a *Authenticator) Check(c server.ClientAuthentication) bool {
	user, err := a.admit(c)
	if err != nil {
		a.log.Warn("refused a NATS connection", "remote", remote(c), "reason", err.Error())
		return false
	}
	c.RegisterUser(user)
	return true
}

var (
	errNotClient   = errors.New("only client connections are accepted")
	errBadPassword = errors.New("wrong password for a reserved user name")
	errNoAdmin     = errors.New("the admin user is disabled")
	errNoUser      = errors.New("no user name: a client declares its inbox prefix (_INBOX.<secret>) as its user name")
	errBadPrefix   = errors.New("the user name (or, without one, the token) is not an inbox prefix _INBOX.<secret>, <secret> being at least 22 characters of a-z, A-Z, 0-9, '_' and '-'")
)

func (a *Authenticator) admit(c server.ClientAuthentication) (*server.User, error) {
	if c.Kind() != server.CLIENT {
		return nil, errNotClient
	}
	o := c.GetOpts()
	if o == nil {
		return nil, errNoUser
	}
	switch o.Username {
	case ServiceUser, PublisherUser:
		if !matches(o.Password, a.internal) {
			return nil, errBadPassword
		}
		if o.Username == ServiceUser {
			return &server.User{Username: ServiceUser, Permissions: ServicePermissions()}, nil
		}
		return &server.User{Username: PublisherUser}, nil
	case AdminUser:
		if a.admin == [32]byte{} {
			return nil, errNoAdmin
		}
		if !matches(o.Password, a.admin) {
			return nil, errBadPassword
		}
		return &server.User{Username: AdminUser}, nil
	}
	prefix := o.Username
	if prefix == "" {
		// The nats CLI sends a --user without --password as a token.
		if prefix = o.Token; prefix == "" {
			return nil, errNoUser
		}
	}
	if natsapi.ValidateInboxPrefix(prefix) != nil {
		// Not the validation error: it quotes the value, which may be a
		// credential given by mistake, and this one is logged.
		return nil, errBadPrefix
	}
	return &server.User{Username: registeredClient, Permissions: ClientPermissions(prefix)}, nil
}

// matches compares password with a digest in constant time.
func matches(password string, sum [32]byte) bool {
	got := sha256.Sum256([]byte(password))
	return password != "" && subtle.ConstantTimeCompare(got[:], sum[:]) == 1
}

func remote(c server.ClientAuthentication) string {
	if addr := c.RemoteAddress(); addr != nil {
		return addr.String()
	}
	return "in-process"
}
