package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vellum-db/vellum/authz"
)

func writeSecret(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwt.secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAccessUsageErrors checks the mistakes the commands catch before they
// contact vellumd (the server flag points nowhere: reaching it would be
// exit status 3). The global flags come first, so that a case may override
// them.
func TestAccessUsageErrors(t *testing.T) {
	short := writeSecret(t, "  too short  \n")
	nowhere := []string{"--server", "nats://127.0.0.1:1", "--dataset", "blog"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "create", "--role", "editor"}, "--name and --role"},
		{[]string{"token", "create", "--name", "ci"}, "--name and --role"},
		{[]string{"token", "create", "--name", "ci", "--role", "editor", "--dataset", "Blog"}, "--dataset"},
		{[]string{"token", "create", "--name", "ci", "--role", "editor", "extra"}, "takes no arguments"},
		{[]string{"token", "revoke"}, "exactly one NAME"},
		{[]string{"token", "list", "x"}, "takes no arguments"},
		{[]string{"dataset", "acl", "blog"}, "NAME and public or private"},
		{[]string{"dataset", "acl", "blog", "secret"}, "not an acl mode"},
		{[]string{"authz", "explain", "--doc", "a", "--action", "read"}, "--as, --doc and --action"},
		{[]string{"authz", "explain", "--as", "alice", "--doc", "a", "--action", "publish"}, "--action"},
		{[]string{"authz", "explain", "--as", "alice", "--doc", "a", "--action", "update", "--patch", "[1]"}, "--patch"},
		{[]string{"jwt", "sign", "--sub", "alice"}, "--secret-file and --sub"},
		{[]string{"jwt", "sign", "--secret-file", short, "--sub", "alice"}, "at least 32"},
		{[]string{"jwt", "sign", "--secret-file", filepath.Join(t.TempDir(), "missing"), "--sub", "alice"}, "--secret-file"},
		{[]string{"jwt", "sign", "--secret-file", short, "--sub", "alice", "--ttl", "-1h"}, "--ttl"},
	} {
		_, stderr, status := runCommand(t, "", append(nowhere, c.args...)...)
		if status != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("vellum %v: exit %d, stderr %q; want exit 2 and a message with %q", c.args, status, stderr, c.want)
		}
	}
}

// TestJWTSign checks that vellum jwt sign makes JWTs that vellumd's
// verifier accepts, with the claims asked for.
func TestJWTSign(t *testing.T) {
	secret := "\n  a secret of at least thirty-two bytes, for the test \n"
	path := writeSecret(t, secret)
	for _, c := range []struct {
		name   string
		args   []string
		cfg    authz.JWTConfig
		groups []string
	}{
		{"defaults", nil, authz.JWTConfig{}, nil},
		{"groups, issuer and audience", []string{"--group", "authors", "--group", "beta", "--iss", "https://auth.example", "--aud", "vellum"},
			authz.JWTConfig{Issuer: "https://auth.example", Audience: "vellum"}, []string{"authors", "beta"}},
		{"renamed claims", []string{"--identity-claim", "uid", "--groups-claim", "teams", "--group", "ops"},
			authz.JWTConfig{IdentityClaim: "uid", GroupsClaim: "teams"}, []string{"ops"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, status := runCommand(t, "", append([]string{"jwt", "sign", "--secret-file", path, "--sub", "alice", "--ttl", "10m"}, c.args...)...)
			if status != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", status, stderr)
			}
			token := strings.TrimSuffix(stdout, "\n")
			if strings.Count(stdout, "\n") != 1 || !authz.IsJWT(token) {
				t.Fatalf("printed %q, want one JWT on one line", stdout)
			}
			cfg := c.cfg
			cfg.HS256Secret = []byte(strings.TrimSpace(secret))
			v, err := authz.NewJWTVerifier(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := v.Verify(token)
			if err != nil {
				t.Fatalf("the daemon's verifier refuses the JWT: %v", err)
			}
			if p.ID != "alice" || !p.Authenticated || !slices.Equal(p.Groups, c.groups) {
				t.Errorf("principal = %+v, want alice with groups %v", p, c.groups)
			}
			// It expires after --ttl (beyond the verifier's leeway).
			cfg.Now = func() time.Time { return time.Now().Add(11 * time.Minute) }
			late, err := authz.NewJWTVerifier(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := late.Verify(token); err == nil || !strings.Contains(err.Error(), "expired") {
				t.Errorf("11 minutes later: %v, want expired", err)
			}
			// Another secret does not verify it.
			cfg.HS256Secret = []byte("another secret of at least thirty-two bytes")
			cfg.Now = nil
			other, _ := authz.NewJWTVerifier(cfg)
			if _, err := other.Verify(token); err == nil {
				t.Error("a verifier with another secret accepts the JWT")
			}
		})
	}
}
