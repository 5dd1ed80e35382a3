// Command vellumd is the Vellum daemon: it keeps the datasets in one Pebble
// store, runs an embedded NATS server (or joins an external one), serves
// transactions, document reads and datasets over NATS request/reply, and
// publishes every committed transaction to its dataset's JetStream stream.
// The embedded server admits a client only with its own secret inbox prefix
// as user name and lets it use only the service's subjects and that inbox
// (docs/nats.md, "Connecting"; docs/jetstream.md).
//
// On first start it writes a random administrator token to DATA/admin.token
// (mode 0600). A request is authenticated by its bearer credential
// ("Authorization: Bearer <credential>"): the administrator token, a robot
// token, or an end user's JWT when --jwt-hs256-secret-file or --jwks-file is
// given; a request without one is everyone (docs/access-control.md).
// SIGINT or SIGTERM shut it down cleanly.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/cmd/vellumd/gcfloor"
	"github.com/vellum-db/vellum/transport/natsapi"
	"github.com/vellum-db/vellum/transport/natsauth"
)

// config holds the daemon's flags.
type config struct {
	data       string
	natsListen string
	natsURL    string
	logLevel   string
	logFormat  string

	jwtSecretFile string
	jwksFile      string
	jwtIssuer     string
	jwtAudience   string
	jwtIdentity   string
	jwtGroups     string

	readOnly bool // serve a copy made by vellum replay, refusing writes

	jetStream         bool
	jetStreamReplicas int
	natsPublisherURL  string

	gcHeapFloorMiB int // see package gcfloor; 0 leaves the collector to GOGC
}

// shutdownTimeout bounds the wait for requests in flight at shutdown.
const shutdownTimeout = 30 * time.Second

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "vellumd:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	var cfg config
	cmd := &cobra.Command{
		Use:   "vellumd",
		Short: "The Vellum document store daemon",
		Long: `vellumd keeps Vellum's datasets in a Pebble store under --data and serves
them over NATS: through an embedded NATS server listening on --nats-listen,
or through the external NATS server at --nats-url.

On first start it writes a random administrator token to DATA/admin.token
(mode 0600). Requests carry a credential as "Authorization: Bearer <credential>"
(the vellum CLI reads it from --token or VELLUM_TOKEN): the administrator
token (the administrator role everywhere), a robot token made with
"vellum token create", or an end user's JWT, verified with the HS256 secret of
--jwt-hs256-secret-file or the RS256/ES256 keys of --jwks-file. A request
without a credential is "everyone": it may read the root-path documents of
public datasets and nothing else. See docs/access-control.md.

The embedded NATS server admits a client only with a secret inbox prefix of
its own (_INBOX.<secret>) as its NATS user name, and lets it publish only to
the service and receive only on that inbox; the NATS user "admin" with the
administrator token as password may do anything (docs/nats.md#connecting).
Every committed transaction is published to the JetStream stream
vellum_<dataset> (docs/jetstream.md).`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, cfg, os.Stderr, stop)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.data, "data", "./vellum-data", "directory of the store, the NATS JetStream files and admin.token")
	f.StringVar(&cfg.natsListen, "nats-listen", "127.0.0.1:4222", "HOST:PORT of the embedded NATS server (port 0 picks a free one)")
	f.StringVar(&cfg.natsURL, "nats-url", "", "use the external NATS server at this URL instead of embedding one")
	f.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&cfg.logFormat, "log-format", "text", "text or json")
	f.StringVar(&cfg.jwtSecretFile, "jwt-hs256-secret-file", "", "verify HS256 JWTs with the secret in FILE (its content, surrounding white space trimmed; at least 32 bytes)")
	f.StringVar(&cfg.jwksFile, "jwks-file", "", "verify RS256 and ES256 JWTs with the RSA and P-256 keys of the JSON Web Key Set in FILE")
	f.StringVar(&cfg.jwtIssuer, "jwt-issuer", "", "when set, a JWT's iss claim must equal it")
	f.StringVar(&cfg.jwtAudience, "jwt-audience", "", "when set, a JWT's aud claim must include it")
	f.StringVar(&cfg.jwtIdentity, "jwt-identity-claim", "sub", "the JWT claim holding the user's identity id (a-zA-Z0-9_-)")
	f.StringVar(&cfg.jwtGroups, "jwt-groups-claim", "groups", "the JWT claim holding the user's group names (an array of strings or one string)")
	f.BoolVar(&cfg.readOnly, "read-only", false, "refuse every write (readOnly error): serve a copy made by vellum replay (docs/export-replay.md)")
	f.BoolVar(&cfg.jetStream, "jetstream", true, "publish every committed transaction to the dataset's JetStream stream vellum_<dataset> (docs/jetstream.md)")
	f.IntVar(&cfg.jetStreamReplicas, "jetstream-replicas", 1, "replicas of the event streams vellumd creates (3 on a JetStream cluster)")
	f.StringVar(&cfg.natsPublisherURL, "nats-publisher-url", "", "with --nats-url: connect the event publisher to this URL (another NATS user) instead of --nats-url (docs/nats.md#external-nats)")
	f.IntVar(&cfg.gcHeapFloorMiB, "gc-heap-floor-mib", gcfloor.DefaultFloor>>20, "keep the Go heap goal at least this many MiB, so that the garbage collector runs less often while the live heap is small (0: GOGC alone; docs/cli.md#memory-and-the-garbage-collector)")
	cmd.MarkFlagsMutuallyExclusive("nats-listen", "nats-url")
	return cmd
}

// run runs the daemon until ctx is done, then shuts it down. stopSignals is
// called once shutdown starts, so that a second signal kills the process.
func run(ctx context.Context, cfg config, stderr io.Writer, stopSignals func()) error {
	log, err := newLogger(cfg.logLevel, cfg.logFormat, stderr)
	if err != nil {
		return err
	}
	if cfg.gcHeapFloorMiB < 0 {
		return fmt.Errorf("--gc-heap-floor-mib %d: want 0 (off) or a number of MiB", cfg.gcHeapFloorMiB)
	}
	defer gcfloor.Start(uint64(cfg.gcHeapFloorMiB) << 20)()
	var host string
	var port int
	if cfg.natsURL == "" {
		if host, port, err = parseListen(cfg.natsListen); err != nil {
			return err
		}
	}
	if cfg.natsPublisherURL != "" && cfg.natsURL == "" {
		return errors.New("--nats-publisher-url needs --nats-url: the embedded server gives the publisher its own user itself")
	}
	verifier, err := jwtVerifier(cfg)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(cfg.data)
	if err != nil {
		return fmt.Errorf("--data %q: %w", cfg.data, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the data directory: %w", err)
	}

	tokenPath := filepath.Join(dir, "admin.token")
	token, created, err := loadOrCreateToken(tokenPath)
	if err != nil {
		return err
	}
	if created {
		log.Info("wrote a new administrator token", "file", tokenPath)
	}

	storeDir := filepath.Join(dir, "store")
	eng, err := vellum.Open(storeDir, vellum.Options{Logger: log, ReadOnly: cfg.readOnly})
	if err != nil {
		return fmt.Errorf("opening the store in %s: %w", storeDir, err)
	}
	engOpen := true
	defer func() { // on the error paths below
		if engOpen {
			_ = eng.Close()
		}
	}()

	var (
		ns      *server.Server
		nc      *nats.Conn
		natsURL string
		mode    string
	)
	closed := make(chan struct{})
	connOpts := []nats.Option{
		nats.Name("vellumd"),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("reconnected to NATS", "url", c.ConnectedUrlRedacted()) }),
	}
	// pubOpts are the options of the event publisher's own connection.
	pubOpts := []nats.Option{
		nats.Name("vellumd jetstream"),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1), // a publish while disconnected fails at once; the log is the buffer
	}
	if cfg.natsURL == "" {
		mode = "embedded"
		// In embedded mode vellumd decides every connection's permissions.
		auth := natsauth.New(token, log.With("component", "nats-auth"))
		ns, err = startEmbeddedNATS(host, port, filepath.Join(dir, "nats"), auth, log, cfg.logLevel == "debug")
		if err != nil {
			return err
		}
		defer ns.Shutdown() // on the error paths below; a no-op after the first
		natsURL = ns.ClientURL()
		nc, err = nats.Connect(natsURL, append(connOpts, nats.InProcessServer(ns), auth.ServiceOptions())...)
		pubOpts = append(pubOpts, nats.InProcessServer(ns), auth.PublisherOptions())
	} else {
		mode = "external"
		nc, err = nats.Connect(cfg.natsURL, append(connOpts, nats.MaxReconnects(-1))...)
		if err == nil {
			natsURL = nc.ConnectedUrlRedacted()
		}
	}
	if err != nil {
		return fmt.Errorf("connecting to the %s NATS server: %w", mode, err)
	}
	defer nc.Close()

	var pub *natsapi.Publisher
	if cfg.jetStream {
		target := natsURL
		if mode == "external" {
			target = cfg.natsURL
			if cfg.natsPublisherURL != "" {
				target = cfg.natsPublisherURL
			}
		}
		pubConn, err := nats.Connect(target, pubOpts...)
		if err != nil {
			return fmt.Errorf("connecting the event publisher to the %s NATS server: %w", mode, err)
		}
		defer pubConn.Close()
		pub, err = natsapi.PublishEvents(pubConn, eng, natsapi.PublisherOptions{Logger: log, Replicas: cfg.jetStreamReplicas})
		if err != nil {
			return err
		}
		defer pub.Close() // on the error paths below; a no-op after the first
	}

	srv, err := natsapi.Serve(nc, eng, natsapi.Options{
		Auth:   natsapi.AdminToken(token, &authz.Authenticator{JWT: verifier, Tokens: eng}),
		Logger: log,
	})
	if err != nil {
		return err
	}
	log.Info("vellumd ready",
		"data", dir,
		"nats", mode,
		"nats_url", natsURL,
		"api", natsapi.Prefix,
		"admin_token_file", tokenPath,
		"jwt", jwtMode(cfg),
		"read_only", cfg.readOnly,
		"jetstream", cfg.jetStream,
		"gc_heap_floor_mib", cfg.gcHeapFloorMiB)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "reason", context.Cause(ctx))
	case <-closed:
		runErr = errors.New("the NATS connection closed")
		log.Error("shutting down: the NATS connection closed")
	}
	stopSignals()

	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Close(sctx); err != nil {
		log.Error("stopping the service", "error", err)
		runErr = errors.Join(runErr, err)
	}
	if pub != nil {
		// Let the stream take the last transactions, briefly: what it
		// does not get now, it gets from the log at the next start.
		fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := pub.Flush(fctx); err != nil {
			log.Warn("the event streams will catch up at the next start", "error", err)
		}
		fcancel()
		pub.Close()
	}
	nc.Close()
	engOpen = false
	if err := eng.Close(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("closing the store: %w", err))
	}
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
	if runErr == nil {
		log.Info("vellumd stopped")
	}
	return runErr
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// jwtVerifier builds the JWT verifier of the --jwt-* and --jwks-file flags,
// or returns nil when neither key source is given (JWTs are then refused).
// A setting that cannot work is an error: the daemon must not start and
// quietly refuse every user.
func jwtVerifier(cfg config) (*authz.JWTVerifier, error) {
	if cfg.jwtSecretFile == "" && cfg.jwksFile == "" {
		for _, f := range []struct{ name, value, def string }{
			{"--jwt-issuer", cfg.jwtIssuer, ""},
			{"--jwt-audience", cfg.jwtAudience, ""},
			{"--jwt-identity-claim", cfg.jwtIdentity, "sub"},
			{"--jwt-groups-claim", cfg.jwtGroups, "groups"},
		} {
			if f.value != f.def {
				return nil, fmt.Errorf("%s is set, but no JWT can be verified without --jwt-hs256-secret-file or --jwks-file", f.name)
			}
		}
		return nil, nil
	}
	if cfg.jwtIdentity == "" || cfg.jwtGroups == "" {
		return nil, errors.New("--jwt-identity-claim and --jwt-groups-claim must not be empty")
	}
	jc := authz.JWTConfig{
		Issuer:        cfg.jwtIssuer,
		Audience:      cfg.jwtAudience,
		IdentityClaim: cfg.jwtIdentity,
		GroupsClaim:   cfg.jwtGroups,
	}
	var err error
	if cfg.jwtSecretFile != "" {
		if jc.HS256Secret, err = authz.ReadHS256SecretFile(cfg.jwtSecretFile); err != nil {
			return nil, fmt.Errorf("--jwt-hs256-secret-file: %w", err)
		}
		if len(jc.HS256Secret) == 0 {
			return nil, fmt.Errorf("--jwt-hs256-secret-file %s holds only white space: the HS256 secret must be at least 32 bytes", cfg.jwtSecretFile)
		}
	}
	if cfg.jwksFile != "" {
		if jc.JWKS, err = authz.ReadJWKSFile(cfg.jwksFile); err != nil {
			return nil, fmt.Errorf("--jwks-file: %w", err)
		}
	}
	v, err := authz.NewJWTVerifier(jc)
	if err != nil {
		return nil, fmt.Errorf("JWT verification (--jwt-hs256-secret-file, --jwks-file, --jwt-*): %w", err)
	}
	return v, nil
}

// jwtMode says, for the start-up line, which JWTs the daemon accepts.
func jwtMode(cfg config) string {
	switch {
	case cfg.jwtSecretFile != "" && cfg.jwksFile != "":
		return "HS256, RS256, ES256"
	case cfg.jwtSecretFile != "":
		return "HS256"
	case cfg.jwksFile != "":
		return "RS256, ES256"
	}
	return "off"
}
