package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/transport/natsapi"
)

const testAdminToken = "cli-test-admin-token-0123456789"

// testDaemon is a real embedded NATS server, the real engine and the
// service: vellumd in-process.
type testDaemon struct {
	url string
	eng *vellum.Engine
}

func startTestDaemon(t *testing.T, opts vellum.Options) *testDaemon {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS server not ready")
	}
	eng, err := vellum.Open(t.TempDir(), opts)
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
	return &testDaemon{url: ns.ClientURL(), eng: eng}
}

// vellum runs the CLI against d as the administrator on dataset ds.
func (d *testDaemon) vellum(t *testing.T, stdin, ds string, args ...string) (string, string, int) {
	t.Helper()
	return runCommand(t, stdin, append([]string{"--server", d.url, "--token", testAdminToken, "--dataset", ds}, args...)...)
}

func (d *testDaemon) transact(t *testing.T, ds, body string) string {
	t.Helper()
	res, err := d.eng.Transact(context.Background(), ds, vellum.SystemPrincipal, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return res.TransactionID
}

func lines(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestExportImportCommands: export at the head and at a transaction, to
// standard output and to a file, then import that file into another
// dataset; a file with bad lines is rejected line by line and writes
// nothing; bad points are usage or typed errors.
func TestExportImportCommands(t *testing.T) {
	d := startTestDaemon(t, vellum.Options{})
	ctx := context.Background()
	for _, ds := range []string{"blog", "copy"} {
		if _, err := d.eng.CreateDataset(ctx, vellum.SystemPrincipal, ds, "public"); err != nil {
			t.Fatal(err)
		}
	}
	first := d.transact(t, "blog", `{"mutations":[{"create":{"_id":"post-1","_type":"post","title":"one"}},{"create":{"_id":"drafts.post-2","_type":"post"}}]}`)
	d.transact(t, "blog", `{"mutations":[{"patch":{"id":"post-1","set":{"title":"edited"}}},{"create":{"_id":"post-3","_type":"post"}}]}`)

	out, stderr, status := d.vellum(t, "", "blog", "export")
	if status != 0 || len(lines(out)) != 3 || !strings.Contains(out, `"title":"edited"`) {
		t.Fatalf("export: exit %d, out %q, stderr %q", status, out, stderr)
	}
	if !strings.Contains(stderr, "export: done, 3 documents") {
		t.Errorf("export progress: %q", stderr)
	}
	out, _, status = d.vellum(t, "", "blog", "export", "--at", first, "--no-drafts")
	if status != 0 || len(lines(out)) != 1 || !strings.Contains(out, `"title":"one"`) {
		t.Errorf("export --at %s --no-drafts: exit %d, %q", first, status, out)
	}
	file := filepath.Join(t.TempDir(), "blog.ndjson")
	if _, stderr, status := d.vellum(t, "", "blog", "export", "-o", file); status != 0 {
		t.Fatalf("export -o: exit %d, %s", status, stderr)
	}
	data, err := os.ReadFile(file)
	if err != nil || len(lines(string(data))) != 3 {
		t.Fatalf("export file: %q, %v", data, err)
	}

	out, stderr, status = d.vellum(t, "", "copy", "import", file)
	if status != 0 {
		t.Fatalf("import: exit %d, %s %s", status, out, stderr)
	}
	var rep struct{ Documents, Written, Batches int }
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Documents != 3 || rep.Written != 3 || rep.Batches != 1 {
		t.Errorf("import printed %q (%v)", out, err)
	}
	if !strings.Contains(stderr, "import (write): done, 3 documents") {
		t.Errorf("import progress: %q", stderr)
	}
	again, _, _ := d.vellum(t, "", "copy", "export")
	for _, id := range []string{"post-1", "drafts.post-2", "post-3"} {
		if !strings.Contains(again, `"_id":"`+id+`"`) {
			t.Errorf("the imported dataset lacks %s: %s", id, again)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.ndjson")
	os.WriteFile(bad, []byte("{\"_id\":\"fine\",\"_type\":\"t\"}\nnot json\n{\"_id\":\"x\"}\n"), 0o600)
	head, _ := d.eng.Head("copy")
	out, _, status = d.vellum(t, "", "copy", "import", bad)
	got := lines(out)
	if status != 1 || len(got) != 3 || !strings.Contains(got[0], `"line":2`) || !strings.Contains(got[1], `"line":3`) ||
		!strings.Contains(got[2], `"code":"importRejected"`) || !strings.Contains(got[2], "nothing was written") {
		t.Errorf("import of bad lines: exit %d, %q", status, out)
	}
	if after, _ := d.eng.Head("copy"); after != head {
		t.Errorf("a rejected import wrote %d events", after-head)
	}

	for _, c := range []struct {
		args   []string
		status int
		say    string
	}{
		{[]string{"export", "--at", "2026-11-31T00:00:00Z"}, 2, "malformed time"},
		{[]string{"export", "--at", "no-such-tx"}, 1, `"code":"unknownTransaction"`},
		{[]string{"export", "--at", "1999-01-01T00:00:00Z"}, 1, `"code":"timeBeforeDataset"`},
		{[]string{"export", "extra"}, 2, "takes no arguments"},
		{[]string{"import"}, 2, "exactly one FILE"},
		{[]string{"import", filepath.Join(t.TempDir(), "missing")}, 2, "FILE"},
		{[]string{"import", "--batch-size", "0", file}, 2, "--batch-size"},
	} {
		out, stderr, status := d.vellum(t, "", "blog", c.args...)
		if status != c.status || !strings.Contains(out+stderr, c.say) {
			t.Errorf("vellum %v: exit %d, %q %q; want exit %d saying %q", c.args, status, out, stderr, c.status, c.say)
		}
	}
}

// TestReplayCommand replays a dataset through the daemon into a directory,
// then serves the copy with the real vellumd --read-only and checks that it
// reads as the source did at that point and refuses writes.
func TestReplayCommand(t *testing.T) {
	d := startTestDaemon(t, vellum.Options{})
	ctx := context.Background()
	if _, err := d.eng.CreateDataset(ctx, vellum.SystemPrincipal, "blog", "public"); err != nil {
		t.Fatal(err)
	}
	var mid string
	for i := range 30 {
		tx := d.transact(t, "blog", fmt.Sprintf(`{"mutations":[{"createOrReplace":{"_id":"post-%d","_type":"post","n":%d}}]}`, i%10, i))
		if i == 14 {
			mid = tx
		}
	}
	dir := filepath.Join(t.TempDir(), "copy")
	out, stderr, status := d.vellum(t, "", "blog", "replay", "--to", mid, "--into", dir)
	if status != 0 {
		t.Fatalf("replay: exit %d, %s %s", status, out, stderr)
	}
	var res vellum.ReplayResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Events != 15 || res.HeadHash == "" {
		t.Fatalf("replay printed %q (%v)", out, err)
	}
	if !strings.Contains(stderr, "replay: done, 15 events") {
		t.Errorf("replay progress: %q", stderr)
	}
	// Bad input: nothing written, clear errors.
	for _, c := range []struct {
		args   []string
		status int
		say    string
	}{
		{[]string{"replay", "--to", "5", "--into", dir}, 1, `"code":"directoryNotEmpty"`},
		{[]string{"replay", "--to", "no-such-tx", "--into", filepath.Join(t.TempDir(), "x")}, 1, `"code":"unknownTransaction"`},
		{[]string{"replay", "--to", "2026-99-01T00:00:00Z", "--into", filepath.Join(t.TempDir(), "x")}, 2, "malformed time"},
		{[]string{"replay", "--to", "1990-01-01T00:00:00Z", "--into", filepath.Join(t.TempDir(), "x")}, 1, `"code":"timeBeforeDataset"`},
		{[]string{"replay", "--to", "99", "--into", filepath.Join(t.TempDir(), "x")}, 1, `"code":"eventNotFound"`},
		{[]string{"replay", "--into", filepath.Join(t.TempDir(), "x")}, 2, "--to"},
	} {
		out, stderr, status := d.vellum(t, "", "blog", c.args...)
		if status != c.status || !strings.Contains(out+stderr, c.say) {
			t.Errorf("vellum %v: exit %d, %q %q; want exit %d saying %q", c.args, status, out, stderr, c.status, c.say)
		}
		if into := c.args[len(c.args)-1]; into != dir {
			if _, err := os.Stat(into); !os.IsNotExist(err) {
				t.Errorf("vellum %v left %s behind", c.args, into)
			}
		}
	}
	// An editor may not read the log.
	secret, _, err := d.eng.CreateToken(ctx, vellum.SystemPrincipal, "ed", "editor", "")
	if err != nil {
		t.Fatal(err)
	}
	into := filepath.Join(t.TempDir(), "x")
	out, _, status = runCommand(t, "", "--server", d.url, "--token", secret, "--dataset", "blog", "replay", "--to", "3", "--into", into)
	if _, err := os.Stat(into); status != 1 || !strings.Contains(out, `"code":"permissionDenied"`) || !os.IsNotExist(err) {
		t.Errorf("replay by an editor: exit %d, %q, %s: %v", status, out, into, err)
	}

	if testing.Short() {
		t.Skip("serving the copy builds and runs vellumd; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "vellumd")
	if b, err := exec.Command("go", "build", "-o", bin, "../vellumd").CombinedOutput(); err != nil {
		t.Fatalf("building vellumd: %v\n%s", err, b)
	}
	url, token := serveReadOnly(t, bin, dir)
	run := func(stdin string, args ...string) (string, int) {
		out, stderr, status := runCommand(t, stdin, append([]string{"--server", url, "--token", token, "--dataset", "blog"}, args...)...)
		return out + stderr, status
	}
	got, status := run("", "get", "post-4", "post-9")
	if status != 0 || !strings.Contains(got, `"n":14`) || !strings.Contains(got, `"n":9`) {
		t.Errorf("get on the copy: exit %d, %q", status, got)
	}
	got, status = run(`{"mutations":[{"create":{"_id":"x","_type":"t"}}]}`, "mutate")
	if status != 1 || !strings.Contains(got, `"code":"readOnly"`) {
		t.Errorf("mutate on the copy: exit %d, %q", status, got)
	}
	got, status = run("", "dataset", "create", "other")
	if status != 1 || !strings.Contains(got, `"code":"readOnly"`) {
		t.Errorf("dataset create on the copy: exit %d, %q", status, got)
	}
	got, status = run("", "export")
	if status != 0 || len(lines(got)) != 10+1 { // ten documents and the progress line
		t.Errorf("export of the copy: exit %d, %q", status, got)
	}
}

// serveReadOnly starts vellumd --data dir --read-only on a free port and
// returns its NATS URL and administrator token; the test's cleanup stops it.
func serveReadOnly(t *testing.T, bin, dir string) (url, token string) {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), "vellumd.log")
	logOut, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--data", dir, "--read-only", "--nats-listen", "127.0.0.1:0", "--log-format", "json")
	cmd.Stderr = logOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logOut.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(logFile)
		for _, l := range lines(string(data)) {
			var rec struct {
				Msg      string `json:"msg"`
				URL      string `json:"nats_url"`
				ReadOnly bool   `json:"read_only"`
			}
			if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "vellumd ready" {
				if !rec.ReadOnly {
					t.Fatalf("vellumd --read-only says it is not read-only: %s", l)
				}
				tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
				if err != nil {
					t.Fatal(err)
				}
				return rec.URL, strings.TrimSpace(string(tok))
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	data, _ := os.ReadFile(logFile)
	t.Fatalf("vellumd --read-only did not become ready:\n%s", data)
	return "", ""
}
