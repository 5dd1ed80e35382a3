package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
)

// TestExternalNATSPermissions runs vellumd against a separately started NATS
// server configured with the users and permissions docs/nats.md
// ("External NATS") prescribes: vellumd's service and publisher as two
// users, and two clients each allowed only its own inbox. The service
// works, the stream fills, and the second client reads nothing of the
// first's and cannot forge events.
func TestExternalNATSPermissions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short")
	}
	bin := buildBinaries(t)
	alicePrefix, evePrefix := natsapi.NewInboxPrefix(), natsapi.NewInboxPrefix()
	client := func(prefix string) *server.Permissions {
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"vellum.v1.>", "$SRV.>"}, Deny: []string{"vellum.v1.events.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{prefix + ".>"}},
			Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: time.Minute},
		}
	}
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(),
		Users: []*server.User{
			{Username: "vellumd", Password: "service-secret", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"vellum.v1.events.>", "$JS.>", "$KV.>", "$O.>", "$SYS.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"vellum.v1.>", "$SRV.>", "_INBOX.>"}},
			}},
			{Username: "vellumd-pub", Password: "publisher-secret", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"vellum.v1.events.>", "$JS.API.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}},
			{Username: "alice", Password: "a", Permissions: client(alicePrefix)},
			{Username: "eve", Password: "e", Permissions: client(evePrefix)},
			{Username: "auditor", Password: "x"}, // a trusted consumer; all permissions here
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	defer ns.Shutdown()
	withUser := func(user, pass string) string {
		u, err := url.Parse(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(user, pass)
		return u.String()
	}

	data := t.TempDir()
	d := startDaemon(t, bin, data, "--nats-url", withUser("vellumd", "service-secret"),
		"--nats-publisher-url", withUser("vellumd-pub", "publisher-secret"))
	defer d.stop(t)
	if strings.Contains(d.logs(), "service-secret") || strings.Contains(d.logs(), "publisher-secret") {
		t.Errorf("the daemon logged a NATS password")
	}
	token := adminToken(t, data)

	connect := func(user, pass, prefix string) (*nats.Conn, *errorLog) {
		el := &errorLog{}
		nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo(user, pass), nats.CustomInboxPrefix(prefix),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { el.add(err) }))
		if err != nil {
			t.Fatalf("connecting as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		return nc, el
	}
	aliceConn, _ := connect("alice", "a", alicePrefix)
	alice := natsapi.NewClient(aliceConn, token)
	eveConn, eveErrs := connect("eve", "e", evePrefix)
	var subs []*nats.Subscription
	for _, subject := range []string{">", alicePrefix + ".>", "_INBOX.>", "vellum.v1.>"} {
		s, err := eveConn.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := alice.CreateDataset(ctx, "blog", ""); err != nil {
		t.Fatalf("Alice: %v", err)
	}
	var last string
	for i := range 5 {
		if i == 1 {
			// The stream exists now: Eve tries to forge an event, and to
			// make the service answer into the stream.
			waitStream(t, withUser("auditor", "x"), "", "blog", last)
			if err := eveConn.Publish("vellum.v1.events.blog", []byte(`{"forged":true}`)); err != nil {
				t.Fatal(err)
			}
			if err := eveConn.PublishRequest("vellum.v1.datasets.list", "vellum.v1.events.blog", nil); err != nil {
				t.Fatal(err)
			}
			if err := eveConn.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		res, err := alice.Mutate(ctx, "blog", []byte(`{"mutations":[{"create":{"_id":"secret.d`+string(rune('0'+i))+`","_type":"t"}}]}`))
		if err != nil {
			t.Fatalf("Alice: %v", err)
		}
		var r vellum.TxResult
		if err := json.Unmarshal(res, &r); err != nil {
			t.Fatal(err)
		}
		last = r.TransactionID
	}
	msgs := waitStream(t, withUser("auditor", "x"), "", "blog", last)
	checkStream(t, msgs)
	if len(msgs) != 5 {
		t.Errorf("the stream holds %d messages, want the 5 transactions", len(msgs))
	}
	time.Sleep(100 * time.Millisecond)
	for _, s := range subs {
		if n, _, _ := s.Pending(); n != 0 {
			t.Errorf("Eve's subscription to %s received %d messages", s.Subject, n)
		}
		if !strings.Contains(eveErrs.String(), `Subscription to "`+s.Subject+`"`) {
			t.Errorf("Eve's subscription to %s was not refused (%s)", s.Subject, eveErrs.String())
		}
	}
	if !strings.Contains(eveErrs.String(), `Publish to "vellum.v1.events.blog"`) {
		t.Errorf("Eve's forged event was not refused (%s)", eveErrs.String())
	}
}

// errorLog collects a connection's asynchronous errors.
type errorLog struct {
	mu   sync.Mutex
	errs []string
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err.Error())
	l.mu.Unlock()
}

func (l *errorLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.errs, "; ")
}

// TestExternalNATSRestart is the reliability test against the real daemon:
// the external NATS server is stopped and started again (same port, same
// JetStream store) while 8 clients write. vellumd stays up, every
// acknowledged transaction is in the dataset, and the event stream catches
// up with the log without a gap or a duplicate.
func TestExternalNATSRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short")
	}
	bin := buildBinaries(t)
	store := t.TempDir()
	start := func(port int) *server.Server {
		ns, err := server.NewServer(&server.Options{
			Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true, JetStream: true, StoreDir: store,
		})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("NATS server not ready")
		}
		return ns
	}
	ns := start(server.RANDOM_PORT)
	defer func() { ns.Shutdown() }()
	natsURL := ns.ClientURL()
	port := ns.Addr().(*net.TCPAddr).Port

	data := t.TempDir()
	d := startDaemon(t, bin, data, "--nats-url", natsURL)
	defer d.stop(t)
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	client := natsapi.NewClient(nc, adminToken(t, data))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if _, err := client.CreateDataset(ctx, "blog", ""); err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		acked = map[string]string{} // transaction id → document id
		n     atomic.Int64
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				doc := fmt.Sprintf("doc-%d", n.Add(1))
				rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
				res, err := client.Mutate(rctx, "blog", []byte(`{"mutations":[{"create":{"_id":"`+doc+`","_type":"t"}}]}`))
				rcancel()
				if err != nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				var r vellum.TxResult
				if err := json.Unmarshal(res, &r); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[r.TransactionID] = doc
				mu.Unlock()
			}
		})
	}
	waitAcked := func(k int) {
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= k {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d transactions acknowledged, waiting for %d", got, k)
			}
		}
	}
	waitAcked(200)
	ns.Shutdown()
	ns.WaitForShutdown()
	time.Sleep(300 * time.Millisecond)
	ns = start(port)
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	waitAcked(before + 200) // the service is back
	close(stop)
	wg.Wait()

	res, err := client.Mutate(ctx, "blog", []byte(`{"mutations":[{"create":{"_id":"last","_type":"t"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var r vellum.TxResult
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	msgs := waitStream(t, natsURL, "", "blog", r.TransactionID)
	inStream := checkStream(t, msgs)
	mu.Lock()
	defer mu.Unlock()
	ids := make([]string, 0, len(acked))
	for tx, doc := range acked {
		if !inStream[tx] {
			t.Errorf("acknowledged transaction %s is not in the stream", tx)
		}
		ids = append(ids, doc)
	}
	docs, err := client.Get(ctx, "blog", ids, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != len(ids) {
		t.Errorf("%d of the %d acknowledged documents are there", len(docs), len(ids))
	}
	t.Logf("%d transactions acknowledged around the restart; the stream holds the whole log, %d events", len(acked), len(msgs))
}

// TestEmbeddedNATSPermissions checks the real daemon's embedded NATS server:
// an anonymous connection is refused, a client may not subscribe beyond its
// inbox, and the admin user reads the event stream.
func TestEmbeddedNATSPermissions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short")
	}
	bin := buildBinaries(t)
	data := t.TempDir()
	d := startDaemon(t, bin, data)
	defer d.stop(t)
	token := adminToken(t, data)

	if nc, err := nats.Connect(d.url, nats.NoReconnect()); err == nil {
		nc.Close()
		t.Errorf("an anonymous connection to vellumd's NATS server was admitted")
	}
	if nc, err := nats.Connect(d.url, nats.UserInfo("admin", "not-the-token"), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Errorf("the admin user was admitted with a wrong password")
	}
	if !strings.Contains(d.logs(), "refused a NATS connection") {
		t.Errorf("vellumd did not log the refused connections")
	}

	errs := &errorLog{}
	eve, err := nats.Connect(d.url, append(natsapi.ClientOptions(), nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs.add(err) }))...)
	if err != nil {
		t.Fatal(err)
	}
	defer eve.Close()
	all, err := eve.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	if err := eve.Flush(); err != nil {
		t.Fatal(err)
	}
	client := natsapi.NewClient(connectClient(t, d.url), token)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.CreateDataset(ctx, "blog", ""); err != nil {
		t.Fatal(err)
	}
	res, err := client.Mutate(ctx, "blog", []byte(`{"mutations":[{"create":{"_id":"a","_type":"t"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var r vellum.TxResult
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	msgs := waitStream(t, d.url, token, "blog", r.TransactionID)
	if len(msgs) != 1 {
		t.Errorf("the stream holds %d messages, want 1", len(msgs))
	}
	if n, _, _ := all.Pending(); n != 0 {
		t.Errorf("a client's subscription to > received %d messages", n)
	}
	if !strings.Contains(errs.String(), `Permissions Violation for Subscription to ">"`) {
		t.Errorf("a client's subscription to > was not refused: %s", errs.String())
	}
}
