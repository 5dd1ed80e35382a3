package natsauth_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
	"github.com/vellum-db/vellum/transport/natsauth"
)

const adminToken = "test-admin-token-0123456789"

// fixture is vellumd's embedded setup: a NATS server whose connections
// natsauth admits, the engine served on a ServiceUser connection and its
// events published on a PublisherUser connection.
type fixture struct {
	ns   *server.Server
	eng  *vellum.Engine
	auth *natsauth.Authenticator
	pub  *natsapi.Publisher
	logs *syncBuffer // the authenticator's log
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{logs: &syncBuffer{}}
	f.auth = natsauth.New(adminToken, slog.New(slog.NewTextHandler(f.logs, nil)))
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(),
		CustomClientAuthentication: f.auth,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	f.ns = ns
	if f.eng, err = vellum.Open(t.TempDir(), vellum.Options{}); err != nil {
		t.Fatal(err)
	}
	svcConn, err := nats.Connect(ns.ClientURL(), f.auth.ServiceOptions())
	if err != nil {
		t.Fatalf("the service connection is refused: %v", err)
	}
	srv, err := natsapi.Serve(svcConn, f.eng, natsapi.Options{Auth: natsapi.AdminToken(adminToken, nil)})
	if err != nil {
		t.Fatal(err)
	}
	pubConn, err := nats.Connect(ns.ClientURL(), f.auth.PublisherOptions())
	if err != nil {
		t.Fatalf("the publisher connection is refused: %v", err)
	}
	if f.pub, err = natsapi.PublishEvents(pubConn, f.eng, natsapi.PublisherOptions{DatasetPoll: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.pub.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		svcConn.Close()
		pubConn.Close()
		_ = f.eng.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return f
}

// conn is a client connection that records the asynchronous errors the
// server sends it (permission violations).
type conn struct {
	*nats.Conn
	mu   sync.Mutex
	errs []string
}

func (c *conn) errors() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.errs, "; ")
}

func (f *fixture) connect(t *testing.T, opts ...nats.Option) (*conn, error) {
	t.Helper()
	c := &conn{}
	opts = append(opts, nats.NoReconnect(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		c.errs = append(c.errs, err.Error())
		c.mu.Unlock()
	}))
	nc, err := nats.Connect(f.ns.ClientURL(), opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	c.Conn = nc
	return c, nil
}

func (f *fixture) mustConnect(t *testing.T, opts ...nats.Option) *conn {
	t.Helper()
	c, err := f.connect(t, opts...)
	if err != nil {
		t.Fatalf("connection refused: %v", err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestConnections: who may connect.
func TestConnections(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		name string
		opts []nats.Option
		ok   bool
	}{
		{"a client with a fresh inbox prefix", natsapi.ClientOptions(), true},
		{"the administrator", []nats.Option{nats.UserInfo(natsauth.AdminUser, adminToken)}, true},
		{"anonymous", nil, false},
		{"the admin token as a token", []nats.Option{nats.Token(adminToken)}, false},
		{"an inbox prefix as a token (the nats CLI's --user without --password)", []nats.Option{nats.Token(natsapi.NewInboxPrefix())}, true},
		{"the administrator with a wrong token", []nats.Option{nats.UserInfo(natsauth.AdminUser, "wrong")}, false},
		{"the administrator without a password", []nats.Option{nats.UserInfo(natsauth.AdminUser, "")}, false},
		{"the service user without its password", []nats.Option{nats.UserInfo(natsauth.ServiceUser, "")}, false},
		{"the publisher user with the admin token", []nats.Option{nats.UserInfo(natsauth.PublisherUser, adminToken)}, false},
		{"the bare inbox root", []nats.Option{nats.UserInfo("_INBOX", "")}, false},
		{"a short inbox secret", []nats.Option{nats.UserInfo("_INBOX.abc", "")}, false},
		{"a wildcard inbox", []nats.Option{nats.UserInfo("_INBOX.>", "")}, false},
		{"an inbox of two tokens", []nats.Option{nats.UserInfo("_INBOX.0123456789abcdef0123456789.x", "")}, false},
		{"another root", []nats.Option{nats.UserInfo("vellum.v1.0123456789abcdef0123456789", "")}, false},
	} {
		_, err := f.connect(t, c.opts...)
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case !c.ok && err == nil:
			t.Errorf("%s: admitted", c.name)
		case !c.ok && !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization"):
			t.Errorf("%s: refused with %v, want an authorization violation", c.name, err)
		}
	}
	logs := f.logs.String()
	if got := strings.Count(logs, "refused a NATS connection"); got != 11 {
		t.Errorf("%d refusals logged, want 11:\n%s", got, logs)
	}
	if strings.Contains(logs, adminToken) {
		t.Errorf("the log of refused connections contains the administrator token:\n%s", logs)
	}
}

// TestNoBypass: a client and an eavesdropper; the eavesdropper sees none of
// the client's replies or of the events, and cannot write to the event
// stream or reach JetStream through the service.
func TestNoBypass(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)

	alicePrefix := natsapi.NewInboxPrefix()
	alice := f.mustConnect(t, nats.UserInfo(alicePrefix, ""), nats.CustomInboxPrefix(alicePrefix))
	aliceClient := natsapi.NewClient(alice.Conn, adminToken)

	eve := f.mustConnect(t, natsapi.ClientOptions()...)
	// Eve's subscriptions: everything, Alice's inbox, the events, and a
	// subject of her choosing; each must be refused.
	var subs []*nats.Subscription
	for _, subject := range []string{">", alicePrefix + ".>", "_INBOX.>", natsapi.EventSubjectPrefix + ">", "vellum.v1.>", "$JS.>"} {
		s, err := eve.SubscribeSync(subject)
		if err != nil {
			t.Fatalf("subscribe %s: %v", subject, err)
		}
		subs = append(subs, s)
	}
	if err := eve.Flush(); err != nil {
		t.Fatal(err)
	}

	// Alice works: her requests and replies go through.
	if _, err := aliceClient.CreateDataset(ctx, "blog", ""); err != nil {
		t.Fatalf("Alice: %v", err)
	}
	if _, err := aliceClient.Mutate(ctx, "blog", []byte(`{"mutations":[{"create":{"_id":"secret.plan","_type":"plan","text":"for admins"}}]}`)); err != nil {
		t.Fatalf("Alice: %v", err)
	}
	docs, err := aliceClient.Get(ctx, "blog", []string{"secret.plan"}, "")
	if err != nil || len(docs) != 1 {
		t.Fatalf("Alice's get: %v, %d documents", err, len(docs))
	}

	// Eve tries to publish where she may not: into the stream, to the
	// JetStream API, to another client's inbox, anywhere else.
	js := "$JS.API.STREAM.DELETE.vellum_blog"
	for _, subject := range []string{natsapi.EventSubjectPrefix + "blog", js, alicePrefix + ".x", "anything"} {
		if err := eve.Publish(subject, []byte(`{"forged":true}`)); err != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
	}
	// And tries to make the service answer there: a request whose reply
	// subject is the event stream or the JetStream API.
	for _, reply := range []string{natsapi.EventSubjectPrefix + "blog", js} {
		if err := eve.PublishRequest("vellum.v1.datasets.list", reply, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := eve.Flush(); err != nil {
		t.Fatal(err)
	}
	// Another write of Alice's, so the stream has had time to see Eve's.
	if _, err := aliceClient.Mutate(ctx, "blog", []byte(`{"mutations":[{"createOrReplace":{"_id":"secret.plan","_type":"plan","text":"v2"}}]}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)

	for _, s := range subs {
		if n, _, _ := s.Pending(); n != 0 {
			m, _ := s.NextMsg(0)
			t.Errorf("Eve's subscription %s received %d messages, the first on %s: %s", s.Subject, n, m.Subject, m.Data)
		} else if !strings.Contains(eve.errors(), s.Subject) {
			t.Errorf("Eve's subscription to %s was not refused (errors: %s)", s.Subject, eve.errors())
		}
	}
	for _, subject := range []string{natsapi.EventSubjectPrefix + "blog", js, alicePrefix + ".x", "anything"} {
		if !strings.Contains(eve.errors(), `Publish to "`+subject+`"`) {
			t.Errorf("Eve's publish to %s was not refused (errors: %s)", subject, eve.errors())
		}
	}

	// The stream is intact: exactly the log, nothing forged, not deleted.
	admin := f.mustConnect(t, nats.UserInfo(natsauth.AdminUser, adminToken))
	deadline := time.Now().Add(10 * time.Second)
	head, _ := f.eng.Head("blog")
	for f.pub.Published("blog") != head && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	jsc, err := jetstream.New(admin.Conn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jsc.Stream(ctx, "vellum_blog")
	if err != nil {
		t.Fatalf("the administrator cannot read the stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != head || info.State.LastSeq != head {
		t.Errorf("the stream holds %d messages up to %d, the log %d events", info.State.Msgs, info.State.LastSeq, head)
	}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(m.Data), "forged") || strings.Contains(string(m.Data), `"datasets"`) || m.Header.Get(natsapi.SeqHeader) == "" {
			t.Errorf("stream message %d was not published by vellumd: %s", seq, m.Data)
		}
	}

	// A client may answer a message vellumd sends it with a reply subject
	// (a listener's heartbeat), once; Eve may not publish there herself.
	svc := f.mustConnect(t, f.auth.ServiceOptions())
	hb, err := svc.SubscribeSync("_INBOX.vellumd-heartbeat.>")
	if err != nil {
		t.Fatal(err)
	}
	aliceInbox, err := alice.SubscribeSync(alicePrefix + ".listen")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := svc.PublishRequest(alicePrefix+".listen", "_INBOX.vellumd-heartbeat.1", []byte("ping")); err != nil {
		t.Fatal(err)
	}
	ping, err := aliceInbox.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("Alice got no heartbeat: %v", err)
	}
	for range 2 { // the second answer exceeds the one allowed
		if err := ping.Respond([]byte("pong")); err != nil {
			t.Fatal(err)
		}
	}
	if err := eve.Publish("_INBOX.vellumd-heartbeat.1", []byte("forged pong")); err != nil {
		t.Fatal(err)
	}
	if err := alice.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := eve.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := hb.NextMsg(5 * time.Second); err != nil || string(m.Data) != "pong" {
		t.Fatalf("vellumd did not get Alice's answer: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if n, _, _ := hb.Pending(); n != 0 {
		m, _ := hb.NextMsg(0)
		t.Errorf("vellumd got %d more answers, the first %q: only one answer of Alice's is allowed, none of Eve's", n, m.Data)
	}

	// A client may use micro's discovery.
	if _, err := alice.Request("$SRV.PING.vellum", nil, 5*time.Second); err != nil {
		t.Errorf("Alice's $SRV.PING: %v", err)
	}
}
