package vellum

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vellum-db/vellum/authz"
)

// exportIDs runs Export and returns the exported ids, checking that each
// line is a JSON object whose _id is the id.
func exportIDs(t *testing.T, e *Engine, ds string, p *authz.Principal, opts ExportOptions) ([]string, map[string]map[string]any, error) {
	t.Helper()
	var ids []string
	docs := map[string]map[string]any{}
	_, n, err := e.Export(context.Background(), ds, p, opts, func(doc []byte) error {
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			t.Fatalf("exported line %q is not a JSON object: %v", doc, err)
		}
		id, _ := m["_id"].(string)
		ids = append(ids, id)
		docs[id] = m
		return nil
	})
	if err == nil && n != int64(len(ids)) {
		t.Errorf("Export counted %d documents, wrote %d", n, len(ids))
	}
	return ids, docs, err
}

func TestExport(t *testing.T) {
	e := newTestEngine(t, "blog")
	ctx := context.Background()
	r1 := mustTransact(t, e, "blog", `{"mutations":[
		{"create":{"_id":"post-1","_type":"post","title":"one"}},
		{"create":{"_id":"drafts.post-1","_type":"post","title":"one (draft)"}},
		{"create":{"_id":"secret.settings","_type":"settings"}},
		{"create":{"_id":"versions.r1.post-1","_type":"post","title":"one (release)"}}]}`)
	time.Sleep(5 * time.Millisecond)
	between := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	r2 := mustTransact(t, e, "blog", `{"mutations":[
		{"patch":{"id":"post-1","set":{"title":"one, edited"}}},
		{"create":{"_id":"post-2","_type":"post","title":"two"}},
		{"delete":{"id":"drafts.post-1"}},
		{"create":{"_id":"_.groups.readers","_type":"system.group","members":["alice"],"grants":[{"path":"secret.**","permissions":["read"]}]}},
		{"create":{"_id":"_.groups.settings","_type":"system.group","members":["bob"],"grants":[{"filter":"_type == 'settings'","permissions":["read"]}]}},
		{"create":{"_id":"_.groups.ones","_type":"system.group","members":["carol"],"grants":[{"filter":"title match 'one*'","permissions":["read"]}]}},
		{"create":{"_id":"_.groups.twos","_type":"system.group","members":["dave"],"grants":[{"filter":"{...}._type == 'settings'","permissions":["read"]}]}}]}`)
	head := headSeq(t, e, "blog")

	for _, c := range []struct {
		name string
		p    *authz.Principal
		opts ExportOptions
		want string // ids, comma-separated
	}{
		{"head, admin", SystemPrincipal, ExportOptions{}, "post-1,post-2,secret.settings,versions.r1.post-1"},
		{"head with system documents", SystemPrincipal, ExportOptions{System: true}, "_.groups.ones,_.groups.readers,_.groups.settings,_.groups.twos,post-1,post-2,secret.settings,versions.r1.post-1"},
		{"no drafts", SystemPrincipal, ExportOptions{NoDrafts: true}, "post-1,post-2,secret.settings"},
		{"at the first transaction", SystemPrincipal, ExportOptions{At: Point{TxID: r1.TransactionID}}, "drafts.post-1,post-1,secret.settings,versions.r1.post-1"},
		{"at a time between", SystemPrincipal, ExportOptions{At: Point{Time: between}}, "drafts.post-1,post-1,secret.settings,versions.r1.post-1"},
		{"at the second by number", SystemPrincipal, ExportOptions{At: Point{Seq: head}}, "post-1,post-2,secret.settings,versions.r1.post-1"},
		{"resumed after post-1", SystemPrincipal, ExportOptions{After: "post-1"}, "post-2,secret.settings,versions.r1.post-1"},
		// Everyone reads only the root path of a public dataset.
		{"everyone", authz.Anonymous(), ExportOptions{}, "post-1,post-2"},
		{"everyone, in the past", authz.Anonymous(), ExportOptions{At: Point{TxID: r1.TransactionID}}, "post-1"},
		// alice's group grants read on secret.**.
		{"a group member", &authz.Principal{ID: "alice", Authenticated: true}, ExportOptions{}, "post-1,post-2,secret.settings"},
		// bob's group grants read by a filter: each document is decoded
		// and decided.
		{"a member of a group with a filter", &authz.Principal{ID: "bob", Authenticated: true}, ExportOptions{}, "post-1,post-2,secret.settings"},
		{"a filter, drafts", &authz.Principal{ID: "bob", Authenticated: true}, ExportOptions{At: Point{TxID: r1.TransactionID}}, "post-1,secret.settings"},
		// carol's filter reads title: only _id, _type and title are decoded.
		{"a filter on a body attribute", &authz.Principal{ID: "carol", Authenticated: true}, ExportOptions{}, "post-1,post-2,versions.r1.post-1"},
		{"a filter on a body attribute, in the past", &authz.Principal{ID: "carol", Authenticated: true}, ExportOptions{At: Point{TxID: r1.TransactionID}}, "drafts.post-1,post-1,versions.r1.post-1"},
		// dave's filter reads the whole document ({...}).
		{"a filter on the whole document", &authz.Principal{ID: "dave", Authenticated: true}, ExportOptions{}, "post-1,post-2,secret.settings"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ids, _, err := exportIDs(t, e, "blog", c.p, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(ids, ","); got != c.want {
				t.Errorf("exported %s, want %s", got, c.want)
			}
		})
	}

	// Versions as of the point, byte for byte as Get shows them then.
	_, docs, err := exportIDs(t, e, "blog", SystemPrincipal, ExportOptions{At: Point{TxID: r1.TransactionID}})
	if err != nil {
		t.Fatal(err)
	}
	if docs["post-1"]["title"] != "one" || docs["post-1"]["_rev"] != r1.TransactionID {
		t.Errorf("post-1 at the first transaction: %v", docs["post-1"])
	}
	_, docs, _ = exportIDs(t, e, "blog", SystemPrincipal, ExportOptions{})
	if docs["post-1"]["title"] != "one, edited" || docs["post-1"]["_rev"] != r2.TransactionID {
		t.Errorf("post-1 at the head: %v", docs["post-1"])
	}

	// Writes after an export's point do not change later pages.
	page, err := e.ExportPage(ctx, "blog", SystemPrincipal, ExportOptions{MaxBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Documents) != 1 || !page.More || page.Next != "post-1" || page.Seq != head {
		t.Fatalf("first page: %d documents, more %v, next %q, seq %d", len(page.Documents), page.More, page.Next, page.Seq)
	}
	mustTransact(t, e, "blog", `{"mutations":[{"create":{"_id":"post-0","_type":"post"}},{"delete":{"id":"post-2"}},{"patch":{"id":"secret.settings","set":{"x":1}}}]}`)
	var rest []string
	for page.More {
		page, err = e.ExportPage(ctx, "blog", SystemPrincipal, ExportOptions{Seq: page.Seq, After: page.Next, MaxBytes: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Documents {
			var m map[string]any
			json.Unmarshal(d, &m)
			rest = append(rest, m["_id"].(string))
			if m["x"] != nil {
				t.Errorf("a later write shows in the export: %s", d)
			}
		}
	}
	if got := strings.Join(rest, ","); got != "post-2,secret.settings,versions.r1.post-1" {
		t.Errorf("later pages: %s", got)
	}
}

// TestExportBadInput: every bad point is a typed error that says what.
func TestExportBadInput(t *testing.T) {
	e := newTestEngine(t, "blog", "empty")
	before := time.Now().UTC().Add(-time.Hour)
	mustTransact(t, e, "blog", `{"mutations":[{"create":{"_id":"a","_type":"t"}}]}`)
	for _, c := range []struct {
		ds, point string
		code, say string
	}{
		{"blog", "nonexistent-tx", CodeUnknownTransaction, "no transaction \"nonexistent-tx\""},
		{"blog", "2026-13-45T00:00:00Z", CodeInvalidTime, "malformed time"},
		{"blog", "2026-11-23", CodeInvalidTime, "RFC 3339"},
		{"blog", before.Format(time.RFC3339), CodeTimeBeforeDataset, "first event is at"},
		{"blog", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), CodeInvalidTime, "in the future"},
		{"blog", "7", CodeNoSuchEvent, "ends at event 1"},
		{"blog", "0", CodeInvalidRequest, "sequence number"},
		{"empty", before.Format(time.RFC3339), CodeTimeBeforeDataset, "no event yet"},
		{"nope", "", CodeUnknownDataset, "does not exist"},
	} {
		p, err := ParsePoint(c.point)
		if err == nil {
			_, _, err = exportIDs(t, e, c.ds, SystemPrincipal, ExportOptions{At: p})
		}
		var ve *Error
		if !errors.As(err, &ve) || ve.Code != c.code || !strings.Contains(ve.Description, c.say) {
			t.Errorf("export %s at %q: %v; want %s saying %q", c.ds, c.point, err, c.code, c.say)
		}
	}
	// An empty dataset exports nothing, without error.
	ids, _, err := exportIDs(t, e, "empty", SystemPrincipal, ExportOptions{})
	if err != nil || len(ids) != 0 {
		t.Errorf("empty dataset: %v, %v", ids, err)
	}
}

func TestParsePoint(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Point
	}{
		{"", Point{}},
		{"42", Point{Seq: 42}},
		{"2026-11-23T10:00:00+01:00", Point{Time: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}},
		{"2026-11-23T10:00:00.5Z", Point{Time: time.Date(2026, 11, 23, 10, 0, 0, 5e8, time.UTC)}},
		{"01JFABCDEF0123456789ABCDEF", Point{TxID: "01JFABCDEF0123456789ABCDEF"}},
		{"import-abc-1", Point{TxID: "import-abc-1"}},
	} {
		got, err := ParsePoint(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParsePoint(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}
