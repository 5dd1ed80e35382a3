package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embeddedMaxPayload is the largest message the embedded NATS server
// accepts: room for a transaction holding a document at the engine's 32 MiB
// limit.
const embeddedMaxPayload = 64 << 20

// parseListen splits --nats-listen into host and port; port 0 becomes
// nats-server's "any free port".
func parseListen(listen string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("--nats-listen %q is not HOST:PORT: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("--nats-listen %q: port %q is not a number from 0 to 65535", listen, portStr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// startEmbeddedNATS starts a NATS server listening on host:port with
// JetStream storing under storeDir, admitting connections with auth, and
// waits until it accepts connections.
func startEmbeddedNATS(host string, port int, storeDir string, auth server.Authentication, log *slog.Logger, debug bool) (*server.Server, error) {
	listen := net.JoinHostPort(host, strconv.Itoa(port))
	opts := &server.Options{
		ServerName: "vellumd",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		MaxPayload: embeddedMaxPayload,
		NoSigs:     true, // vellumd handles the signals and shuts the server down itself

		CustomClientAuthentication: auth,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configuring the embedded NATS server: %w", err)
	}
	ns.SetLoggerV2(natsLogger{log.With("component", "nats")}, debug, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("the embedded NATS server did not accept connections on %s within 15s (is the port in use?)", listen)
	}
	return ns, nil
}

// natsLogger routes nats-server's log through slog. The server's notices
// (its start-up banner, mostly) are debug lines: vellumd says itself where it
// listens.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v...) }
func (l natsLogger) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	// The payload limit is raised on purpose; see embeddedMaxPayload.
	if strings.HasPrefix(msg, "Maximum payloads over") {
		l.log.Debug(msg)
		return
	}
	l.log.Warn(msg)
}
func (l natsLogger) Fatalf(format string, v ...any) { l.logf(slog.LevelError, format, v...) }
func (l natsLogger) Errorf(format string, v ...any) { l.logf(slog.LevelError, format, v...) }
func (l natsLogger) Debugf(format string, v ...any) { l.logf(slog.LevelDebug, format, v...) }
func (l natsLogger) Tracef(format string, v ...any) { l.logf(slog.LevelDebug-4, format, v...) }

func (l natsLogger) logf(level slog.Level, format string, v ...any) {
	l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
}
