package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/eventlog"
	"github.com/vellum-db/vellum/transport/natsapi"
)

// serveDir runs vellumd in-process on the store in dir (see
// startTestDaemon) and returns its NATS URL.
func serveDir(t *testing.T, dir string) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS server not ready")
	}
	eng, err := vellum.Open(dir, vellum.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := natsapi.Serve(nc, eng, natsapi.Options{Auth: natsapi.AdminToken(testAdminToken, &authz.Authenticator{Tokens: eng})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(ctx)
		nc.Close()
		eng.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns.ClientURL()
}

// TestVerifyCommand verifies a store, then alters one stored event
// directly in Pebble (with the daemon stopped) and checks that verify
// reports that event and exits 1.
// buildStore writes dataset blog (three transactions) into a new store and
// closes it.
func buildStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	eng, err := vellum.Open(dir, vellum.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := eng.CreateDataset(ctx, vellum.SystemPrincipal, "blog", "public"); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"mutations":[{"create":{"_id":"post-1","_type":"post","title":"first"}}]}`,
		`{"mutations":[{"create":{"_id":"post-2","_type":"post","title":"second"}}]}`,
		`{"mutations":[{"patch":{"id":"post-1","set":{"title":"third"}}}]}`,
	} {
		if _, err := eng.Transact(ctx, "blog", vellum.SystemPrincipal, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestVerifyCommand verifies a store, then a store in which one event was
// altered directly in Pebble (before the daemon opened it), and checks
// that verify reports that event and exits 1.
func TestVerifyCommand(t *testing.T) {
	run := func(url string, args ...string) (string, string, int) {
		return runCommand(t, "", append([]string{"--server", url, "--token", testAdminToken}, args...)...)
	}
	url := serveDir(t, buildStore(t))
	for _, tt := range []struct {
		args   []string
		status int
		out    string
		errOut string
	}{
		{[]string{"--dataset", "blog", "verify"}, 0, "ok 3 events\n", "verify: done, 3 events"},
		{[]string{"verify", "--system"}, 0, "", ""},
		{[]string{"--dataset", "nope", "verify"}, 1, `"code":"unknownDataset"`, ""},
		{[]string{"--dataset", "", "verify"}, 2, "", "no dataset"},
	} {
		out, errOut, status := run(url, tt.args...)
		if tt.args[len(tt.args)-1] == "--system" {
			// The system dataset's length depends on the daemon's own
			// records; only its form is checked.
			if status != 0 || !strings.HasPrefix(out, "ok ") || !strings.HasSuffix(out, " events\n") {
				t.Errorf("%v: exit %d, %q", tt.args, status, out)
			}
			continue
		}
		if status != tt.status || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.errOut) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d, %q, %q", tt.args, status, out, errOut, tt.status, tt.out, tt.errOut)
		}
	}
	if out, _, status := runCommand(t, "", "--server", url, "--token", "", "--dataset", "blog", "verify"); status != 1 || !strings.Contains(out, "permissionDenied") {
		t.Errorf("verify without a token: exit %d, %s", status, out)
	}

	tampered := buildStore(t)
	db, err := eventlog.Open(tampered, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := eventlog.EventKey(1, 2) // dataset 1 (blog), event 2
	v, closer, err := db.Pebble().Get(k)
	if err != nil {
		t.Fatal(err)
	}
	v = bytes.Clone(v)
	closer.Close()
	i := bytes.Index(v, []byte("second"))
	if i < 0 {
		t.Fatalf("event 2 does not hold the title: %q", v)
	}
	v[i] = 'S'
	if err := db.Pebble().Set(k, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	out, _, status := run(serveDir(t, tampered), "--dataset", "blog", "verify")
	if status != 1 || !strings.HasPrefix(out, "FAILED hashChainBroken at event 2: ") || !strings.Contains(out, "expected: ") || !strings.Contains(out, "found: ") {
		t.Errorf("verify of the altered store: exit %d\n%s", status, out)
	}
}
