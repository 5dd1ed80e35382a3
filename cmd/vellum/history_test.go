package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vellum-db/vellum"
)

// auditFixture is a daemon with dataset "blog": post-1 created, edited, a
// group, post-1 deleted. It returns the transaction ids and the time just
// after the edit.
func auditFixture(t *testing.T) (d *testDaemon, txs []string, afterEdit string) {
	t.Helper()
	d = startTestDaemon(t, vellum.Options{})
	if _, err := d.eng.CreateDataset(context.Background(), vellum.SystemPrincipal, "blog", "public"); err != nil {
		t.Fatal(err)
	}
	txs = append(txs, d.transact(t, "blog", `{"mutations":[{"create":{"_id":"post-1","_type":"post","title":"one"}}]}`))
	txs = append(txs, d.transact(t, "blog", `{"mutations":[{"patch":{"id":"post-1","set":{"title":"two"}}}]}`))
	time.Sleep(2 * time.Millisecond)
	afterEdit = time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(2 * time.Millisecond)
	txs = append(txs, d.transact(t, "blog", `{"mutations":[{"create":{"_id":"_.groups.editors","_type":"system.group","members":["alice"],"grants":[{"path":"**","permissions":["read","update"]}]}}]}`))
	txs = append(txs, d.transact(t, "blog", `{"mutations":[{"delete":{"id":"post-1"}}]}`))
	return d, txs, afterEdit
}

func TestHistoryCommands(t *testing.T) {
	d, txs, afterEdit := auditFixture(t)
	tests := []struct {
		name   string
		args   []string
		status int
		out    []string // substrings of standard output
		errOut string   // substring of standard error
	}{
		{"get at a revision", []string{"history", "get", "post-1", "--rev", txs[0]}, 0, []string{`{"documents":[{`, `"title":"one"`}, ""},
		{"get at a time", []string{"history", "get", "post-1", "--time", afterEdit}, 0, []string{`"title":"two"`}, ""},
		{"get after the delete", []string{"history", "get", "post-1", "--rev", txs[3]}, 1, []string{`"code":"documentNotFound"`}, ""},
		{"get an unknown id", []string{"history", "get", "nope", "--time", afterEdit}, 1, []string{`"code":"documentNotFound"`}, ""},
		{"get at an unknown revision", []string{"history", "get", "post-1", "--rev", "nope"}, 1, []string{`"code":"unknownTransaction"`}, ""},
		{"get before the dataset", []string{"history", "get", "post-1", "--time", "2000-01-01T00:00:00Z"}, 1, []string{`"code":"timeBeforeDataset"`}, ""},
		{"get with --rev and --time", []string{"history", "get", "post-1", "--rev", txs[0], "--time", afterEdit}, 2, nil, "--rev and --time"},
		{"get with neither", []string{"history", "get", "post-1"}, 2, nil, "needs --rev TXID or --time TIME"},
		{"get with a malformed time", []string{"history", "get", "post-1", "--time", "yesterday"}, 2, nil, "not an RFC 3339 time"},
		{"get without id", []string{"history", "get", "--time", afterEdit}, 2, nil, "at least one document id"},
		{"log of a document", []string{"history", "log", "post-1"}, 0, []string{`"seq":1`, `"seq":2`, `"seq":4`, `"operation":"delete"`, `"grant":{"group":"_.groups.administrator","index":0}`}, ""},
		{"log reversed, limited", []string{"history", "log", "--reverse", "--limit", "1"}, 0, []string{`"seq":4`}, ""},
		{"log from a transaction to a time", []string{"history", "log", "--from", txs[1], "--to", afterEdit}, 0, []string{`"seq":2`}, ""},
		{"log by an author nobody is", []string{"history", "log", "--author", "alice"}, 0, nil, ""},
		{"log from an unknown transaction", []string{"history", "log", "--from", "nope"}, 1, []string{`"code":"unknownTransaction"`}, ""},
		{"log from a malformed time", []string{"history", "log", "--from", "2026-13-45"}, 2, nil, "malformed time"},
		{"log with a negative limit", []string{"history", "log", "--limit", "-3"}, 2, nil, "--limit -3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, status := d.vellum(t, "", "blog", tt.args...)
			if status != tt.status {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", status, tt.status, out, errOut)
			}
			for _, s := range tt.out {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %s:\n%s", s, out)
				}
			}
			if tt.out == nil && tt.status == 0 && out != "" {
				t.Errorf("stdout: %s, want nothing", out)
			}
			if !strings.Contains(errOut, tt.errOut) {
				t.Errorf("stderr %q lacks %q", errOut, tt.errOut)
			}
		})
	}

	// Every line of a log is one transaction in Sanity's shape.
	out, _, _ := d.vellum(t, "", "blog", "history", "log")
	ls := lines(out)
	if len(ls) != 4 {
		t.Fatalf("log: %d lines, want 4:\n%s", len(ls), out)
	}
	for i, l := range ls {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if m["id"] != txs[i] {
			t.Errorf("line %d: id %v, want %s", i+1, m["id"], txs[i])
		}
		for _, k := range []string{"timestamp", "author", "documentIDs", "mutations", "effects"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks %s: %s", i+1, k, l)
			}
		}
	}
}

func TestAccessCommand(t *testing.T) {
	d, _, afterEdit := auditFixture(t)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	out, errOut, status := d.vellum(t, "", "blog", "access", "--doc", "post-1", "--at", afterEdit)
	if status != 0 {
		t.Fatalf("access: exit %d\n%s%s", status, out, errOut)
	}
	for _, s := range []string{"post-1 in blog at", "acl public", "read:", "identity everyone", "by _.groups.public#0", "roles    administrator, editor, developer, contributor, viewer", "update:"} {
		if !strings.Contains(out, s) {
			t.Errorf("access report lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "editors") {
		t.Errorf("the editors group did not exist yet:\n%s", out)
	}
	// Just before the delete the group exists.
	out, _, status = d.vellum(t, "", "blog", "access", "--doc", "_.groups.editors", "--at", now, "--json")
	var rep vellum.AccessReport
	if status != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Document != "_.groups.editors" {
		t.Fatalf("access --json: exit %d, %s", status, out)
	}
	for _, tt := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"access", "--doc", "post-1"}, 2, "needs --at"},
		{[]string{"access", "--at", now}, 2, "needs --doc"},
		{[]string{"access", "--doc", "post-1", "--at", "noon"}, 2, "not an RFC 3339 time"},
		{[]string{"access", "--doc", "post-1", "--at", now}, 1, `"code":"documentNotFound"`}, // deleted by now
		{[]string{"access", "--doc", "post-1", "--at", "1999-01-01T00:00:00Z"}, 1, `"code":"timeBeforeDataset"`},
	} {
		out, errOut, status := d.vellum(t, "", "blog", tt.args...)
		if status != tt.status || !strings.Contains(out+errOut, tt.want) {
			t.Errorf("%v: exit %d, %s%s; want exit %d and %q", tt.args, status, out, errOut, tt.status, tt.want)
		}
	}
}
