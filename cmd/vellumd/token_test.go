package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.token")

	tok, created, err := loadOrCreateToken(path)
	if err != nil || !created || len(tok) != 64 {
		t.Fatalf("first call = %q, %v, %v; want a new 64-digit token", tok, created, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %04o, want 0600", fi.Mode().Perm())
	}
	again, created, err := loadOrCreateToken(path)
	if err != nil || created || again != tok {
		t.Errorf("second call = %q, %v, %v; want the same token, not created", again, created, err)
	}
	other, _, _ := loadOrCreateToken(filepath.Join(t.TempDir(), "admin.token"))
	if other == tok {
		t.Errorf("two data directories got the same token")
	}

	for _, c := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // error substring; "" for success
	}{
		{"operator's own token", "my-own-token-0123456789\n", 0o600, ""},
		{"readable by others", "my-own-token-0123456789\n", 0o644, "chmod 600"},
		{"group writable", "my-own-token-0123456789\n", 0o620, "chmod 600"},
		{"too short", "short\n", 0o600, "at least 16"},
		{"empty", "", 0o600, "at least 16"},
		{"two tokens", "my-own-token-0123456789 another-token-0123\n", 0o600, "without spaces"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "admin.token")
			if err := os.WriteFile(p, []byte(c.content), c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, c.mode); err != nil { // beyond the umask
				t.Fatal(err)
			}
			tok, created, err := loadOrCreateToken(p)
			if c.want == "" {
				if err != nil || created || tok != strings.TrimSpace(c.content) {
					t.Errorf("= %q, %v, %v; want the file's token", tok, created, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v, want one saying %q", err, c.want)
			}
		})
	}
}

func TestNewLogger(t *testing.T) {
	for _, c := range []struct {
		level, format string
		ok            bool
	}{
		{"info", "text", true},
		{"debug", "json", true},
		{"WARN", "text", true},
		{"error", "json", true},
		{"loud", "text", false},
		{"info", "xml", false},
	} {
		_, err := newLogger(c.level, c.format, io.Discard)
		if (err == nil) != c.ok {
			t.Errorf("newLogger(%q, %q) error = %v, want ok=%v", c.level, c.format, err, c.ok)
		}
	}
}

// TestFlagErrors checks that bad flags stop the daemon before it touches
// the data directory.
func TestFlagErrors(t *testing.T) {
	files := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(files, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	short := file("short.secret", "  only 31 bytes, once trimmed!!  \n")
	blank := file("blank.secret", " \n\t\n")
	good := file("good.secret", "\n a secret of 32 bytes or more, trimmed \n")
	notJWKS := file("bad.jwks", `{"keys":`)
	noKeys := file("empty.jwks", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--nats-listen", "127.0.0.1:0", "--nats-url", "nats://127.0.0.1:4222"}, "nats-listen"},
		{[]string{"--nats-listen", "no-port"}, "HOST:PORT"},
		{[]string{"--nats-listen", "127.0.0.1:99999"}, "0 to 65535"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--gc-heap-floor-mib", "-1"}, "--gc-heap-floor-mib"},
		{[]string{"extra"}, "unknown command"},
		{[]string{"--jwt-hs256-secret-file", short}, "at least 32"},
		{[]string{"--jwt-hs256-secret-file", blank}, "only white space"},
		{[]string{"--jwt-hs256-secret-file", filepath.Join(files, "missing")}, "--jwt-hs256-secret-file"},
		{[]string{"--jwks-file", notJWKS}, "not a valid JSON Web Key Set"},
		{[]string{"--jwks-file", noKeys}, "no RSA or P-256"},
		{[]string{"--jwks-file", filepath.Join(files, "missing")}, "--jwks-file"},
		{[]string{"--jwt-issuer", "https://auth.example"}, "--jwt-issuer is set"},
		{[]string{"--jwt-groups-claim", "roles"}, "--jwt-groups-claim is set"},
		{[]string{"--jwt-hs256-secret-file", good, "--jwt-identity-claim", ""}, "must not be empty"},
		{[]string{"--jwt-hs256-secret-file", good, "--log-level", "loud"}, "--log-level"},
	} {
		data := filepath.Join(t.TempDir(), "data")
		cmd := newRootCmd()
		cmd.SetArgs(append([]string{"--data", data}, c.args...))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("vellumd %v: error %v, want one mentioning %q", c.args, err, c.want)
		}
		if _, err := os.Stat(data); err == nil {
			t.Errorf("vellumd %v made the data directory before failing", c.args)
		}
	}
}
