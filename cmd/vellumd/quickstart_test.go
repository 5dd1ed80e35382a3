package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestQuickstart runs the shell sessions of the quickstart documents against
// the real binaries and checks that they print what the documents say.
//
// A session is a fenced block marked "console". Its lines starting with "$ "
// are commands, run one after another by one bash in a directory where
// vellum-data is the daemon's data directory and bin/vellum the client; the
// lines that follow a command are its expected output (standard output and
// standard error together). "$ go ..." commands (building, the nats CLI) are
// not run and their output is not checked. Transaction ids and timestamps
// differ from run to run and are compared as placeholders, and so are robot
// token secrets. A document that starts the daemon with
// --jwt-hs256-secret-file jwt.secret gets a daemon started so.
//
// With -update-docs the documents' expected outputs are rewritten with what
// the commands printed.
var updateDocs = flag.Bool("update-docs", false, "rewrite the quickstart documents' outputs with the real ones")

func TestQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short")
	}
	for _, c := range []struct {
		doc string
		// jwtSecret, when set, is written to jwt.secret in the session's
		// directory and the daemon verifies HS256 JWTs with it, as the
		// document tells its reader to start it.
		jwtSecret string
	}{
		{doc: "../../README.md"},
		{doc: "../../docs/quickstart.md"},
		{doc: "../../docs/access-control.md", jwtSecret: "x5Zq3bQ0c1Jm2vYkq8Xr7o5PZcJ1u6cS0l9eW2T4p9M=\n"},
		{doc: "../../docs/audit.md"},
		{doc: "../../docs/export-replay.md"},
		{doc: "../../docs/listeners.md"},
	} {
		doc := c.doc
		t.Run(filepath.Base(doc), func(t *testing.T) {
			steps := readSession(t, doc)
			if len(steps) == 0 {
				t.Fatalf("%s has no console session", doc)
			}
			bin := buildBinaries(t)
			work := t.TempDir()
			if err := os.Mkdir(filepath.Join(work, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(bin, "vellum"), filepath.Join(work, "bin", "vellum")); err != nil {
				t.Fatal(err)
			}
			args := []string{"--nats-listen", "127.0.0.1:0"}
			if c.jwtSecret != "" {
				secret := filepath.Join(work, "jwt.secret")
				if err := os.WriteFile(secret, []byte(c.jwtSecret), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--jwt-hs256-secret-file", secret)
			}
			d := startDaemon(t, bin, filepath.Join(work, "vellum-data"), args...)
			defer d.stop(t)

			// One bash runs every command, so that exports carry over;
			// a marker line after each separates the outputs.
			var script strings.Builder
			for i, s := range steps {
				fmt.Fprintf(&script, "%s\necho '%s%d'\n", s.cmd, stepMarker, i)
			}
			cmd := exec.Command("bash", "-c", script.String())
			cmd.Dir = work
			cmd.Env = append(os.Environ(), "VELLUM_SERVER="+d.url, "VELLUM_TOKEN=", "VELLUM_DATASET=")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the session failed: %v\n%s", err, out)
			}
			got := splitOutputs(string(out), len(steps))
			if *updateDocs {
				rewriteSession(t, doc, got)
				return
			}
			for i, s := range steps {
				if normalize(got[i]) != normalize(s.want) {
					t.Errorf("%s: $ %s\n--- got\n%s--- want (the document)\n%s", doc, s.cmd, got[i], s.want)
				}
			}
		})
	}
}

const stepMarker = "@@vellum-quickstart-step@@"

type step struct{ cmd, want string }

func readSession(t *testing.T, path string) []step {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []step
	in, skip := false, false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && strings.HasPrefix(line, "```console"):
			in = true
		case in && strings.HasPrefix(line, "```"):
			in = false
		case in && strings.HasPrefix(line, "$ "):
			c := strings.TrimPrefix(line, "$ ")
			skip = strings.HasPrefix(c, "go ")
			if !skip {
				steps = append(steps, step{cmd: c})
			}
		case in && !skip && len(steps) > 0:
			steps[len(steps)-1].want += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return steps
}

// rewriteSession replaces the expected output of each command run in the
// document's console sessions by got.
func rewriteSession(t *testing.T, path string, got []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	in, skip, i := false, false, 0
	for _, line := range strings.SplitAfter(string(data), "\n") {
		switch {
		case !in && strings.HasPrefix(line, "```console"):
			in = true
		case in && strings.HasPrefix(line, "```"):
			in = false
		case in && strings.HasPrefix(line, "$ "):
			skip = strings.HasPrefix(line, "$ go ")
			b.WriteString(line)
			if !skip {
				b.WriteString(got[i])
				i++
			}
			continue
		case in && !skip:
			continue // the old output
		}
		b.WriteString(line)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("rewrote the outputs of %d commands in %s", i, path)
}

func splitOutputs(out string, n int) []string {
	got := make([]string, n)
	i := 0
	for _, line := range strings.SplitAfter(out, "\n") {
		if strings.HasPrefix(line, stepMarker) {
			i++
			continue
		}
		if i < n {
			got[i] += line
		}
	}
	return got
}

var (
	ulidRE = regexp.MustCompile(`\b[0-9A-HJKMNP-TV-Z]{26}\b`)
	timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	// secretRE matches a robot token's secret, random in every run.
	secretRE = regexp.MustCompile(`\bvlm_[A-Za-z0-9_-]{43}`)
)

// normalize replaces what differs between runs by placeholders.
func normalize(s string) string {
	s = ulidRE.ReplaceAllString(s, "<ULID>")
	s = timeRE.ReplaceAllString(s, "<TIME>")
	s = secretRE.ReplaceAllString(s, "<SECRET>")
	return strings.TrimSpace(s)
}
