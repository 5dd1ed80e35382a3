package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/transport/natsapi"
)

const listenTestToken = "listen-test-admin-token-0123456789"

// daemon is vellumd in-process: a real NATS server on a random loopback
// port, the engine and the service, which a test can stop and start again.
type daemon struct {
	ns   *server.Server
	eng  *vellum.Engine
	conn *nats.Conn
	srv  *natsapi.Server
}

func startNATS(t *testing.T, port int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	return ns
}

func startDaemon(t *testing.T) *daemon {
	t.Helper()
	ns := startNATS(t, server.RANDOM_PORT)
	eng, err := vellum.Open(t.TempDir(), vellum.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{ns: ns, eng: eng}
	d.serve(t)
	if _, err := eng.CreateDataset(context.Background(), vellum.SystemPrincipal, "blog", "public"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.stop(t)
		eng.Close()
		d.ns.Shutdown()
	})
	return d
}

func (d *daemon) serve(t *testing.T) {
	t.Helper()
	var err error
	if d.conn, err = nats.Connect(d.ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	auth := natsapi.AdminToken(listenTestToken, &authz.Authenticator{Tokens: d.eng})
	if d.srv, err = natsapi.Serve(d.conn, d.eng, natsapi.Options{Auth: auth}); err != nil {
		t.Fatal(err)
	}
}

func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if d.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.srv.Close(ctx); err != nil {
		t.Errorf("stopping the service: %v", err)
	}
	d.conn.Close()
	d.srv = nil
}

func (d *daemon) mutate(t *testing.T, tx string) string {
	t.Helper()
	res, err := d.eng.Transact(context.Background(), "blog", vellum.SystemPrincipal, []byte(tx))
	if err != nil {
		t.Fatal(err)
	}
	return res.TransactionID
}

// waitListeners waits until n listeners are attached to the dataset.
func (d *daemon) waitListeners(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _ := d.eng.ListenStats("blog")
		if s.Listeners >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d listeners attached, want %d", s.Listeners, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a writing command and a reading
// test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startListen runs vellum listen in the background against d; the
// returned function waits for it to exit and returns its output and
// status.
func startListen(t *testing.T, d *daemon, args ...string) (out *syncBuffer, wait func() (string, int)) {
	t.Helper()
	resetFlags(rootCmd)
	out = &syncBuffer{}
	errOut := &syncBuffer{}
	rootCmd.SetArgs(append([]string{"listen", "--server", d.ns.ClientURL(), "--token", listenTestToken, "--dataset", "blog", "--timeout", "2s"}, args...))
	rootCmd.SetOut(out)
	rootCmd.SetErr(errOut)
	done := make(chan int, 1)
	go func() {
		status := 0
		if err := rootCmd.Execute(); err != nil {
			status = exitCode(err)
		}
		done <- status
	}()
	t.Cleanup(func() {
		rootCmd.SetArgs(nil)
		rootCmd.SetOut(nil)
		rootCmd.SetErr(nil)
	})
	return out, func() (string, int) {
		select {
		case status := <-done:
			return out.String(), status
		case <-time.After(30 * time.Second):
			t.Fatalf("vellum listen did not exit; it printed:\n%s\nand on standard error:\n%s", out, errOut)
		}
		return "", 0
	}
}

// mutations returns "transition documentId eventId" of the mutation
// events in listen's output.
func mutations(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct{ Type, Transition, DocumentID, EventID string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("output line %q is not JSON: %v", line, err)
		}
		if ev.Type == "mutation" {
			got = append(got, ev.Transition+" "+ev.DocumentID+" "+ev.EventID)
		}
	}
	return got
}

func TestListenCommandUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"listen", "--dataset", "blog", "--param", "t"}, "want NAME=JSON"},
		{[]string{"listen", "--dataset", "blog", "--param", "t=post"}, "not JSON"},
		{[]string{"listen", "--dataset", "blog", "--limit", "-1"}, "--limit"},
		{[]string{"listen", "--dataset", "Bad Name"}, "--dataset"},
		{[]string{"listen", "--dataset", "blog", "extra"}, "takes no arguments"},
	} {
		_, stderr, status := runCommand(t, "", c.args...)
		if status != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: status %d, stderr %q; want 2 and %q", c.args, status, stderr, c.want)
		}
	}
}

func TestListenCommand(t *testing.T) {
	d := startDaemon(t)
	_, wait := startListen(t, d, "--filter", `_type == $t`, "--param", `t="post"`, "--include-result", "--limit", "3")
	d.waitListeners(t, 1)
	tx1 := d.mutate(t, `{"mutations":[{"create":{"_id":"p1","_type":"post","title":"Hello"}},{"create":{"_id":"a1","_type":"article"}}]}`)
	tx2 := d.mutate(t, `{"mutations":[{"patch":{"id":"p1","set":{"title":"Hello again"}}}]}`)
	tx3 := d.mutate(t, `{"mutations":[{"delete":{"id":"p1"}}]}`)
	text, status := wait()
	if status != 0 {
		t.Fatalf("status %d, output:\n%s", status, text)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if !strings.Contains(lines[0], `"type":"welcome"`) {
		t.Errorf("first line %s, want the welcome", lines[0])
	}
	want := []string{"appear p1 " + tx1 + "#p1", "update p1 " + tx2 + "#p1", "disappear p1 " + tx3 + "#p1"}
	if got := mutations(t, text); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("mutation events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(lines[2], `"title":"Hello again"`) {
		t.Errorf("the update's result is missing: %s", lines[2])
	}
}

// The service stops and starts again while vellum listen runs: it
// reconnects by itself and prints what happened meanwhile, once, in order.
func TestListenCommandResumes(t *testing.T) {
	d := startDaemon(t)
	out, wait := startListen(t, d, "--limit", "4")
	d.waitListeners(t, 1)
	var want []string
	tx := d.mutate(t, `{"mutations":[{"create":{"_id":"a","_type":"post"}}]}`)
	want = append(want, "appear a "+tx+"#a")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), tx+"#a") {
		if time.Now().After(deadline) {
			t.Fatalf("the first event was not printed:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.stop(t)
	for _, id := range []string{"b", "c"} {
		tx := d.mutate(t, fmt.Sprintf(`{"mutations":[{"create":{"_id":%q,"_type":"post"}}]}`, id))
		want = append(want, "appear "+id+" "+tx+"#"+id)
	}
	time.Sleep(300 * time.Millisecond) // listen retries meanwhile
	d.serve(t)
	d.waitListeners(t, 1)
	tx = d.mutate(t, `{"mutations":[{"create":{"_id":"d","_type":"post"}}]}`)
	want = append(want, "appear d "+tx+"#d")
	text, status := wait()
	if status != 0 {
		t.Fatalf("status %d, output:\n%s", status, text)
	}
	if got := mutations(t, text); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("mutation events:\n%s\nwant:\n%s\n(output:\n%s)", strings.Join(got, "\n"), strings.Join(want, "\n"), text)
	}
	if !strings.Contains(text, `"type":"reconnect"`) {
		t.Errorf("no reconnect event printed:\n%s", text)
	}
}

// The NATS server goes away and comes back on the same address while
// vellum listen runs and transactions commit: it prints every event once,
// in order.
func TestListenCommandNATSRestart(t *testing.T) {
	d := startDaemon(t)
	out, wait := startListen(t, d, "--limit", "4")
	d.waitListeners(t, 1)
	var want []string
	tx := d.mutate(t, `{"mutations":[{"create":{"_id":"a","_type":"post"}}]}`)
	want = append(want, "appear a "+tx+"#a")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), tx+"#a") {
		if time.Now().After(deadline) {
			t.Fatalf("the first event was not printed:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	port := d.ns.Addr().(*net.TCPAddr).Port
	d.ns.Shutdown()
	d.ns.WaitForShutdown()
	for _, id := range []string{"b", "c"} {
		tx := d.mutate(t, fmt.Sprintf(`{"mutations":[{"create":{"_id":%q,"_type":"post"}}]}`, id))
		want = append(want, "appear "+id+" "+tx+"#"+id)
	}
	d.ns = startNATS(t, port)
	// The service's connection and vellum listen's reconnect by
	// themselves; vellum listen listens again after "a".
	deadline = time.Now().Add(20 * time.Second)
	lastID := want[2][strings.LastIndex(want[2], " ")+1:] // c's event id
	for !strings.Contains(out.String(), lastID) {
		if time.Now().After(deadline) {
			t.Fatalf("the events committed while NATS was down were not printed:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tx = d.mutate(t, `{"mutations":[{"create":{"_id":"d","_type":"post"}}]}`)
	want = append(want, "appear d "+tx+"#d")
	text, status := wait()
	if status != 0 {
		t.Fatalf("status %d, output:\n%s", status, text)
	}
	if got := mutations(t, text); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("mutation events:\n%s\nwant:\n%s\n(output:\n%s)", strings.Join(got, "\n"), strings.Join(want, "\n"), text)
	}
}
