package vellum

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/eventlog"
)

func TestVerifyDataset(t *testing.T) {
	e, _, _ := historyFixture(t)
	ctx := context.Background()
	var calls [][2]uint64
	n, err := e.VerifyDataset(ctx, "blog", SystemPrincipal, func(done, total uint64) { calls = append(calls, [2]uint64{done, total}) })
	if err != nil || n != 5 {
		t.Fatalf("VerifyDataset: %d, %v; want 5 events", n, err)
	}
	if len(calls) == 0 || calls[len(calls)-1] != [2]uint64{5, 5} {
		t.Errorf("progress calls %v, want a last call with 5 of 5", calls)
	}
	if n, err := e.VerifyDataset(ctx, "_system", SystemPrincipal, nil); err != nil || n == 0 {
		t.Errorf("VerifyDataset(_system): %d, %v", n, err)
	}
	for _, tt := range []struct {
		name string
		ds   string
		p    *authz.Principal
		code string
	}{
		{"not an administrator", "blog", roleToken("viewer", authz.RoleViewer, ""), CodePermissionDenied},
		{"everyone", "blog", authz.Anonymous(), CodePermissionDenied},
		{"unknown dataset", "nope", SystemPrincipal, CodeUnknownDataset},
	} {
		if _, err := e.VerifyDataset(ctx, tt.ds, tt.p, nil); AsError(err).Code != tt.code {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.code)
		}
	}

	// Alter event 2's stored bytes (the title in its document) directly in
	// Pebble: the chain must break there.
	d, _ := e.dataset("blog")
	k := eventlog.EventKey(d.num, 2)
	v, closer, err := e.pebbleDB().Get(k)
	if err != nil {
		t.Fatal(err)
	}
	v = bytes.Clone(v)
	closer.Close()
	i := bytes.Index(v, []byte(`"two"`))
	if i < 0 {
		t.Fatalf("event 2 does not hold the title: %q", v)
	}
	v[i+1] = 'T'
	if err := e.pebbleDB().Set(k, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	_, err = e.VerifyDataset(ctx, "blog", SystemPrincipal, nil)
	ae := AsError(err)
	if ae == nil || ae.Code != eventlog.CodeChainBroken || ae.Details["seq"] != uint64(2) || ae.Details["expected"] == ae.Details["found"] {
		t.Fatalf("VerifyDataset after altering event 2: %#v", ae)
	}
	t.Log(ae)

	// Restore it, and alter the current document instead.
	v[i+1] = 't'
	if err := e.pebbleDB().Set(k, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	dk := append(eventlog.KeyPrefix(d.num, eventlog.SpaceDocs), "p2"...)
	dv, closer, err := e.pebbleDB().Get(dk)
	if err != nil {
		t.Fatal(err)
	}
	dv = bytes.Replace(bytes.Clone(dv), []byte("other"), []byte("forged"), 1)
	closer.Close()
	if err := e.pebbleDB().Set(dk, dv, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	_, err = e.VerifyDataset(ctx, "blog", SystemPrincipal, nil)
	ae = AsError(err)
	if ae == nil || ae.Code != "projectionMismatch" || ae.Details["seq"] != uint64(4) || ae.ID != "p2" ||
		!strings.Contains(fmt.Sprint(ae.Details["found"]), "forged") || !strings.Contains(fmt.Sprint(ae.Details["expected"]), "other") {
		t.Fatalf("VerifyDataset after altering p2: %#v", ae)
	}
	t.Log(ae)
}

// accessSummary is "identity@grant ..." | "role ..." | "group ..." for one
// permission of a report.
func accessSummary(s AccessSet) string {
	var ids, roles, groups []string
	for _, a := range s.Identities {
		ids = append(ids, a.Identity+"@"+a.Grant)
	}
	for _, r := range s.Roles {
		roles = append(roles, r.Role)
	}
	for _, g := range s.Groups {
		groups = append(groups, fmt.Sprintf("%s%v", g.Group, g.Members))
	}
	return strings.Join(ids, " ") + " | " + strings.Join(roles, " ") + " | " + strings.Join(groups, " ")
}

func TestAccessAt(t *testing.T) {
	e := newTestEngine(t, "blog")
	ctx := context.Background()
	step := func() time.Time { time.Sleep(3 * time.Millisecond); return time.Now() }
	mustTransact(t, e, "blog", `{"mutations":[
		{"create":{"_id":"post-1","_type":"post","title":"hello"}},
		{"create":{"_id":"_.groups.editors","_type":"system.group","members":["alice"],"grants":[{"filter":"_type == \"post\"","permissions":["read","update"]}]}}]}`)
	t1 := step()
	if _, _, err := e.CreateToken(ctx, SystemPrincipal, "ci", "viewer", "blog"); err != nil {
		t.Fatal(err)
	}
	mustTransact(t, e, "blog", `{"mutations":[{"patch":{"id":"_.groups.editors","set":{"members":["alice","bob"]}}}]}`)
	if _, err := e.SetDatasetACL(ctx, SystemPrincipal, "blog", "private"); err != nil {
		t.Fatal(err)
	}
	t2 := step()
	if _, err := e.RevokeToken(ctx, SystemPrincipal, "ci"); err != nil {
		t.Fatal(err)
	}
	mustTransact(t, e, "blog", `{"mutations":[{"delete":{"id":"_.groups.editors"}}]}`)
	t3 := step()

	rolesRead := "administrator editor developer contributor viewer"
	rolesUpdate := "administrator editor developer"
	tests := []struct {
		name         string
		at           time.Time
		acl          string
		read, update string
	}{
		{"first: public, alice edits", t1, "public",
			"everyone@_.groups.public#0 alice@_.groups.public#0 | " + rolesRead + " | _.groups.editors[alice]",
			"alice@_.groups.editors#0 | " + rolesUpdate + " | _.groups.editors[alice]"},
		{"then: private, bob joins, a viewer token", t2, "private",
			"token-ci@_.groups.viewer#0 alice@_.groups.editors#0 bob@_.groups.editors#0 | " + rolesRead + " | _.groups.editors[alice bob]",
			"alice@_.groups.editors#0 bob@_.groups.editors#0 | " + rolesUpdate + " | _.groups.editors[alice bob]"},
		{"last: token revoked, group deleted", t3, "private",
			" | " + rolesRead + " | ",
			" | " + rolesUpdate + " | "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.AccessAt(ctx, "blog", SystemPrincipal, "post-1", tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if r.ACL != tt.acl {
				t.Errorf("acl %s, want %s", r.ACL, tt.acl)
			}
			if got := accessSummary(r.Read); got != tt.read {
				t.Errorf("read:\n got  %s\n want %s", got, tt.read)
			}
			if got := accessSummary(r.Update); got != tt.update {
				t.Errorf("update:\n got  %s\n want %s", got, tt.update)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Error(err)
			}
		})
	}

	for _, tt := range []struct {
		name string
		p    *authz.Principal
		id   string
		at   time.Time
		code string
	}{
		{"unknown document", SystemPrincipal, "nope", t1, "documentNotFound"},
		{"before the dataset", SystemPrincipal, "post-1", t1.Add(-time.Hour), CodeTimeBeforeDataset},
		{"future", SystemPrincipal, "post-1", time.Now().Add(time.Hour), CodeInvalidTime},
		{"no time", SystemPrincipal, "post-1", time.Time{}, CodeInvalidTime},
		{"invalid id", SystemPrincipal, "..", t1, "invalidDocumentId"},
		{"may not read it now", authz.Anonymous(), "post-1", t1, "documentNotFound"}, // the dataset is private now
	} {
		if _, err := e.AccessAt(ctx, "blog", tt.p, tt.id, tt.at); AsError(err).Code != tt.code {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.code)
		}
	}
}
