package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestEndToEnd builds the real vellumd and vellum binaries, runs the
// README's quickstart through them against a daemon on a random port, stops
// the daemon with SIGTERM and checks that a restarted one still has the data.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short")
	}
	bin := buildBinaries(t)
	data := t.TempDir()

	// The HS256 secret as an operator writes it, with a newline and spaces
	// around it that are not part of it.
	secretFile := filepath.Join(t.TempDir(), "jwt.secret")
	if err := os.WriteFile(secretFile, []byte("\n  a secret of more than thirty-two bytes \n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, bin, data, "--nats-listen", "127.0.0.1:0", "--jwt-hs256-secret-file", secretFile)
	tokenPath := filepath.Join(data, "admin.token")
	fi, err := os.Stat(tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.token has mode %04o, want 0600", fi.Mode().Perm())
	}
	tokenBytes, err := os.ReadFile(tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenBytes))

	cli := &cli{t: t, bin: filepath.Join(bin, "vellum"), env: []string{
		"VELLUM_SERVER=" + d.url, "VELLUM_TOKEN=" + token, "VELLUM_DATASET=",
	}}

	// The quickstart (README.md, docs/quickstart.md).
	out := cli.ok("", "dataset", "create", "blog")
	wantJSON(t, out, map[string]any{"name": "blog", "aclMode": "public"})
	out = cli.ok("", "dataset", "list")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 {
		t.Errorf("dataset list printed %q, want one line", out)
	} else {
		wantJSON(t, lines[0], map[string]any{"name": "blog"})
	}
	cli.env = append(cli.env, "VELLUM_DATASET=blog")

	out = cli.ok(`{"mutations":[
	  {"create":{"_id":"post-1","_type":"post","title":"Hello, Vellum"}},
	  {"create":{"_id":"drafts.post-1","_type":"post","title":"Hello, Vellum (draft)"}}
	]}`, "mutate")
	var res struct {
		TransactionID string
		Results       []struct{ ID, Operation string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("mutate printed %q: %v", out, err)
	}
	if res.TransactionID == "" || len(res.Results) != 2 || res.Results[0].ID != "post-1" ||
		res.Results[0].Operation != "create" || res.Results[1].ID != "drafts.post-1" {
		t.Errorf("mutate result = %+v", res)
	}

	rawPost := cli.ok("", "get", "post-1")
	wantJSON(t, rawPost, map[string]any{"_id": "post-1", "title": "Hello, Vellum", "_rev": res.TransactionID})
	out = cli.ok("", "get", "--perspective", "drafts", "post-1")
	wantJSON(t, out, map[string]any{"_id": "post-1", "title": "Hello, Vellum (draft)", "_originalId": "drafts.post-1"})
	out = cli.ok("", "get", "--perspective", "published", "post-1", "drafts.post-1", "nothing-here")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 {
		t.Errorf("get --perspective published printed %q, want only post-1", out)
	}

	// Failures: the typed error on stdout, the exit status, a hint on stderr.
	for _, c := range []struct {
		name, stdin string
		args        []string
		env         []string
		code        int
		stdout      string // substring
		stderr      string // substring
	}{
		{"stale revision", `{"mutations":[{"patch":{"id":"post-1","ifRevisionID":"stale","set":{"title":"x"}}}]}`,
			[]string{"mutate"}, nil, 1, `"code":"documentRevisionIDDoesNotMatch"`, ""},
		{"existing id", `{"mutations":[{"create":{"_id":"post-1","_type":"post"}}]}`,
			[]string{"mutate"}, nil, 1, `"code":"documentAlreadyExists"`, ""},
		{"bad token", "", []string{"get", "post-1"}, []string{"VELLUM_TOKEN=wrong"}, 1,
			`"code":"unauthorized"`, "rejected the token"},
		{"no token", "", []string{"dataset", "list"}, []string{"VELLUM_TOKEN="}, 1,
			`"code":"permissionDenied"`, "no token was sent"},
		{"no dataset", "", []string{"get", "post-1"}, []string{"VELLUM_DATASET="}, 2, "", "no dataset"},
		{"unknown dataset", "", []string{"get", "--dataset", "nope", "post-1"}, nil, 1, `"code":"unknownDataset"`, ""},
		{"no server", "", []string{"dataset", "list", "--server", "nats://127.0.0.1:1"}, nil, 3, "",
			"cannot reach vellumd at nats://127.0.0.1:1"},
	} {
		stdout, stderr, code := cli.run(c.stdin, c.env, c.args...)
		if code != c.code || !strings.Contains(stdout, c.stdout) || !strings.Contains(stderr, c.stderr) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				c.name, code, stdout, stderr, c.code, c.stdout, c.stderr)
		}
		if c.stderr == "" && stderr != "" {
			t.Errorf("%s: stderr %q, want nothing besides the typed error on stdout", c.name, stderr)
		}
	}

	secrets := accessControl(t, cli, secretFile)

	d.stop(t)
	for _, s := range append(secrets, token) {
		if strings.Contains(d.logs(), s) {
			t.Errorf("the daemon's log contains the credential %.12s…", s)
		}
	}

	// A restart reuses the token and serves the same data.
	d2 := startDaemon(t, bin, data)
	defer d2.stop(t)
	if again, _ := os.ReadFile(tokenPath); string(again) != string(tokenBytes) {
		t.Errorf("admin.token changed across a restart")
	}
	cli.env = append(cli.env, "VELLUM_SERVER="+d2.url)
	if got := cli.ok("", "get", "post-1"); got != rawPost {
		t.Errorf("after a restart get post-1 = %q, want %q", got, rawPost)
	}
	if out := cli.ok("", "dataset", "list"); !strings.Contains(out, `"name":"blog"`) {
		t.Errorf("after a restart dataset list = %q", out)
	}
}

// accessControl runs the access-control commands against a daemon that
// verifies HS256 JWTs with secretFile, on the dataset blog holding post-1
// and drafts.post-1. It returns the credentials it used, which the daemon
// must never log.
func accessControl(t *testing.T, c *cli, secretFile string) []string {
	t.Helper()
	// A robot token: created, used, confined to its dataset, revoked.
	out := c.ok("", "token", "create", "--name", "ci", "--role", "editor", "--dataset", "blog")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	secret := lines[len(lines)-1]
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "created robot token ci") || !strings.HasPrefix(secret, "vlm_") || strings.Contains(secret, " ") {
		t.Fatalf("token create printed %q, want a line about the token and the secret alone last", out)
	}
	robot := []string{"VELLUM_TOKEN=" + secret}
	if _, stderr, code := c.run(`{"mutations":[{"create":{"_id":"post-9","_type":"post"}}]}`, robot, "mutate"); code != 0 {
		t.Errorf("the editor token cannot write blog: exit %d, %s", code, stderr)
	}
	if stdout, _, code := c.run("", robot, "dataset", "create", "more"); code != 1 || !strings.Contains(stdout, `"code":"permissionDenied"`) {
		t.Errorf("the editor token creates a dataset: exit %d, %s", code, stdout)
	}
	out = c.ok("", "token", "list")
	wantJSON(t, strings.TrimSpace(out), map[string]any{"name": "ci", "role": "editor", "dataset": "blog", "identity": "token-ci"})
	if strings.Contains(out, secret) || strings.Contains(out, "hash") {
		t.Errorf("token list shows the secret or its hash: %s", out)
	}
	out = c.ok("", "token", "revoke", "ci")
	if !strings.Contains(out, `"revokedAt":`) {
		t.Errorf("token revoke printed %q, want the record with revokedAt", out)
	}
	if stdout, stderr, code := c.run("", robot, "get", "post-1"); code != 1 || !strings.Contains(stdout, `"code":"unauthorized"`) ||
		!strings.Contains(stdout, "revoked") || !strings.Contains(stderr, "rejected the token") {
		t.Errorf("the revoked token reads: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// An end user with a JWT signed by vellum jwt sign, in the authors group
	// of seed 000.
	c.ok(`{"mutations":[{"create":{"_id":"_.groups.authors","_type":"system.group","members":["authenticated"],
		"grants":[{"filter":"_type == \"post\" && author == identity()","permissions":["read","create","update"]}]}}]}`, "mutate")
	jwt := strings.TrimSpace(c.ok("", "jwt", "sign", "--secret-file", secretFile, "--sub", "alice", "--ttl", "10m"))
	alice := []string{"VELLUM_TOKEN=" + jwt}
	if _, stderr, code := c.run(`{"mutations":[{"create":{"_id":"post-a","_type":"post","author":"alice"}}]}`, alice, "mutate"); code != 0 {
		t.Errorf("alice cannot create her post: exit %d, %s", code, stderr)
	}
	if stdout, _, code := c.run(`{"mutations":[{"create":{"_id":"post-b","_type":"post","author":"bob"}}]}`, alice, "mutate"); code != 1 ||
		!strings.Contains(stdout, `"code":"permissionDenied"`) {
		t.Errorf("alice creates bob's post: exit %d, %s", code, stdout)
	}
	out = c.ok("", "authz", "explain", "--as", "alice", "--doc", "post-1", "--action", "update")
	if !strings.HasPrefix(out, `user alice may not update "post-1"`) || !strings.Contains(out, "_.groups.authors#0") {
		t.Errorf("authz explain printed\n%s", out)
	}

	// Everyone reads the root path of a public dataset, until it is private.
	anon := []string{"VELLUM_TOKEN="}
	if stdout, _, code := c.run("", anon, "get", "post-1", "drafts.post-1"); code != 0 || strings.Count(stdout, "\n") != 1 || !strings.Contains(stdout, `"_id":"post-1"`) {
		t.Errorf("everyone reads blog: exit %d, %q, want post-1 only", code, stdout)
	}
	wantJSON(t, c.ok("", "dataset", "acl", "blog", "private"), map[string]any{"name": "blog", "aclMode": "private"})
	if stdout, _, code := c.run("", anon, "get", "post-1"); code != 0 || stdout != "" {
		t.Errorf("everyone reads private blog: exit %d, %q, want nothing", code, stdout)
	}
	wantJSON(t, c.ok("", "dataset", "acl", "blog", "public"), map[string]any{"aclMode": "public"})
	return []string{secret, jwt}
}

// TestExternalNATS runs vellumd against a separately started NATS server
// (--nats-url), with and without JetStream, and sends it requests through
// the CLI. Writes commit either way; with JetStream the dataset's event
// stream is on the external server.
func TestExternalNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short")
	}
	bin := buildBinaries(t)
	for _, jetStream := range []bool{true, false} {
		t.Run(fmt.Sprintf("jetstream=%v", jetStream), func(t *testing.T) {
			opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true}
			if jetStream {
				opts.JetStream, opts.StoreDir = true, t.TempDir()
			}
			ns, err := server.NewServer(opts)
			if err != nil {
				t.Fatal(err)
			}
			go ns.Start()
			if !ns.ReadyForConnections(10 * time.Second) {
				t.Fatal("NATS server not ready")
			}
			defer ns.Shutdown()

			data := t.TempDir()
			d := startDaemon(t, bin, data, "--nats-url", ns.ClientURL())
			defer d.stop(t)
			if d.url != ns.ClientURL() {
				t.Errorf("vellumd reports NATS URL %s, want the external %s", d.url, ns.ClientURL())
			}
			if _, err := os.Stat(filepath.Join(data, "nats")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("with --nats-url, vellumd still made an embedded server's directory (%v)", err)
			}
			token, err := os.ReadFile(filepath.Join(data, "admin.token"))
			if err != nil {
				t.Fatal(err)
			}
			cli := &cli{t: t, bin: filepath.Join(bin, "vellum"), env: []string{
				"VELLUM_SERVER=" + ns.ClientURL(), "VELLUM_TOKEN=" + strings.TrimSpace(string(token)), "VELLUM_DATASET=ext",
			}}
			wantJSON(t, cli.ok("", "dataset", "create", "ext", "--acl", "private"), map[string]any{"name": "ext", "aclMode": "private"})
			var res struct{ TransactionID string }
			out := cli.ok(`{"mutations":[{"create":{"_id":"a","_type":"t"}}]}`, "mutate")
			if err := json.Unmarshal([]byte(out), &res); err != nil || res.TransactionID == "" {
				t.Fatalf("mutate printed %q (%v)", out, err)
			}
			out = cli.ok(`{"mutations":[{"create":{"_id":"b","_type":"t"}}]}`, "mutate")
			if err := json.Unmarshal([]byte(out), &res); err != nil || res.TransactionID == "" {
				t.Fatalf("mutate printed %q (%v)", out, err)
			}
			if !jetStream {
				for deadline := time.Now().Add(20 * time.Second); !strings.Contains(d.logs(), "event stream interrupted") && time.Now().Before(deadline); {
					time.Sleep(20 * time.Millisecond)
				}
				if !strings.Contains(d.logs(), "event stream interrupted") {
					t.Errorf("without JetStream on the external server, vellumd did not say that events are not published\n%s", d.logs())
				}
				return
			}
			// The external server has no admin user: any connection reads the stream.
			msgs := waitStream(t, ns.ClientURL(), "", "ext", res.TransactionID)
			checkStream(t, msgs)
			if len(msgs) != 2 || msgs[0].body.DocumentIDs[0] != "a" || msgs[1].body.DocumentIDs[0] != "b" {
				t.Errorf("the external stream holds %+v, want the two transactions", msgs)
			}
		})
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// buildBinaries builds vellumd and vellum once per test binary run.
func buildBinaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "vellum-e2e-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+string(filepath.Separator),
			"github.com/vellum-db/vellum/cmd/vellumd", "github.com/vellum-db/vellum/cmd/vellum")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// daemon is a running vellumd.
type daemon struct {
	cmd     *exec.Cmd
	url     string
	mu      sync.Mutex
	log     bytes.Buffer
	done    chan error // the result of Wait
	stopped bool       // stop has run
}

// startDaemon starts vellumd on a random loopback port and waits for its
// "vellumd ready" log line, which names the NATS URL.
func startDaemon(t *testing.T, bin, data string, args ...string) *daemon {
	t.Helper()
	d := &daemon{done: make(chan error, 1)}
	if len(args) == 0 {
		args = []string{"--nats-listen", "127.0.0.1:0"}
	}
	d.cmd = exec.Command(filepath.Join(bin, "vellumd"), append([]string{"--data", data,
		"--log-format", "json", "--log-level", "debug"}, args...)...)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.log.WriteString(line + "\n")
			d.mu.Unlock()
			var rec struct {
				Msg     string `json:"msg"`
				NATSURL string `json:"nats_url"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "vellumd ready" {
				ready <- rec.NATSURL
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		if !d.stopped {
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	select {
	case d.url = <-ready:
	case err := <-d.done:
		d.stopped = true
		t.Fatalf("vellumd exited before it was ready: %v\n%s", err, d.logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("vellumd not ready after 60s\n%s", d.logs())
	}
	return d
}

func (d *daemon) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// stop sends SIGTERM and checks for a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if d.stopped {
		return
	}
	d.stopped = true
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("vellumd exited with %v after SIGTERM\n%s", err, d.logs())
		}
		if !strings.Contains(d.logs(), `"msg":"vellumd stopped"`) {
			t.Errorf("vellumd did not log a clean stop\n%s", d.logs())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("vellumd still running 30s after SIGTERM\n%s", d.logs())
	}
}

// cli runs the vellum binary.
type cli struct {
	t   *testing.T
	bin string
	env []string // later entries win
}

func (c *cli) run(stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(append(os.Environ(), c.env...), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		c.t.Fatalf("vellum %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// ok runs vellum and fails the test unless it exits 0.
func (c *cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	stdout, stderr, code := c.run(stdin, nil, args...)
	if code != 0 {
		c.t.Fatalf("vellum %v: exit %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
	}
	return stdout
}

// wantJSON checks that line is one JSON object holding the fields of want.
func wantJSON(t *testing.T, line string, want map[string]any) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Errorf("%q is not a JSON object: %v", line, err)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q = %v, want %v", strings.TrimSpace(line), k, got[k], v)
		}
	}
}
