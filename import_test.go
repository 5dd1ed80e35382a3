package vellum

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/vellum-db/vellum/authz"
)

// TestImportRoundTrip exports a dataset and imports the file into another:
// the same documents (with the _createdAt of the file; _rev and _updatedAt
// are the import's), in batches, as audited transactions; importing the
// same file again applies nothing.
func TestImportRoundTrip(t *testing.T) {
	e := newTestEngine(t, "src", "dst")
	ctx := context.Background()
	for i := range 25 {
		mustTransact(t, e, "src", fmt.Sprintf(`{"mutations":[{"create":{"_id":"doc-%02d","_type":"post","n":%d,"tags":["a","b"],"nested":{"x":null}}}]}`, i, i))
	}
	mustTransact(t, e, "src", `{"mutations":[{"create":{"_id":"drafts.doc-01","_type":"post","title":"draft"}}]}`)
	var file bytes.Buffer
	if _, _, err := e.Export(ctx, "src", SystemPrincipal, ExportOptions{}, func(doc []byte) error {
		file.Write(doc)
		file.WriteByte('\n')
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var progress []string
	rep, err := Import(ctx, bytes.NewReader(file.Bytes()), e.EngineTransactor("dst", SystemPrincipal), ImportOptions{
		BatchSize: 10,
		Progress: func(pass string, done, total int64) {
			progress = append(progress, fmt.Sprintf("%s %d/%d", pass, done, total))
		},
	})
	if err != nil {
		t.Fatalf("Import: %v (%+v)", err, rep)
	}
	if rep.Documents != 26 || rep.Written != 26 || rep.Batches != 3 || len(rep.Transactions) != 3 || len(rep.Rejected) != 0 {
		t.Errorf("report %+v", rep)
	}
	if got := strings.Join(progress, ","); got != "check 10/26,check 20/26,check 26/26,write 10/26,write 20/26,write 26/26" {
		t.Errorf("progress: %s", got)
	}
	before := headSeq(t, e, "dst")
	if before != 3 {
		t.Errorf("dst holds %d events, want one per batch (3)", before)
	}
	_, srcDocs, _ := exportIDs(t, e, "src", SystemPrincipal, ExportOptions{})
	_, dstDocs, _ := exportIDs(t, e, "dst", SystemPrincipal, ExportOptions{})
	if len(dstDocs) != len(srcDocs) {
		t.Fatalf("dst has %d documents, src %d", len(dstDocs), len(srcDocs))
	}
	for id, s := range srcDocs {
		d := dstDocs[id]
		if d == nil || d["_createdAt"] != s["_createdAt"] || d["_type"] != s["_type"] || fmt.Sprint(d["n"], d["tags"], d["nested"]) != fmt.Sprint(s["n"], s["tags"], s["nested"]) {
			t.Errorf("%s: imported %v, exported %v", id, d, s)
		}
		if rev, _ := d["_rev"].(string); !strings.HasPrefix(rev, "import-") {
			t.Errorf("%s: _rev %q is not the import's transaction", id, rev)
		}
	}
	// Again: answered from the log, nothing new.
	rep2, err := Import(ctx, bytes.NewReader(file.Bytes()), e.EngineTransactor("dst", SystemPrincipal), ImportOptions{BatchSize: 10})
	if err != nil || rep2.Written != 26 {
		t.Fatalf("second import: %v %+v", err, rep2)
	}
	if after := headSeq(t, e, "dst"); after != before {
		t.Errorf("importing the same file again wrote %d events", after-before)
	}
}

// TestImportRejectsLines: a file with bad lines is reported line by line,
// locally checked and dry-run alike, and nothing is written.
func TestImportRejectsLines(t *testing.T) {
	e := newTestEngine(t, "dst")
	ctx := context.Background()
	file := strings.Join([]string{
		`{"_id":"drafts.ok-1","_type":"post"}`,
		`{"_id":"drafts.ok-2","_type":"post"`,
		``,
		`[1,2]`,
		`{"_type":"post"}`,
		`{"_id":"bad..id","_type":"post"}`,
		`{"_id":"drafts.ok-3"}`,
		`{"_id":"drafts.ok-1","_type":"post"}`,
		`{"_id":"drafts.when","_type":"post","_createdAt":"yesterday"}`,
		`{"_id":"post-x","_type":"post"}`,
		`{"_id":"drafts.ok-4","_type":"post","big":"` + strings.Repeat("x", 2000) + `"}`,
		`{"_id":"drafts.ok-5","_type":"post"}`,
	}, "\n")
	// A contributor writes drafts only, so post-x fails the dry run.
	editor := &authz.Principal{ID: "ed", Authenticated: true, Roles: []authz.RoleAssignment{{Role: authz.RoleContributor}}}
	rep, err := Import(ctx, strings.NewReader(file), e.EngineTransactor("dst", editor), ImportOptions{BatchSize: 2, MaxBatchBytes: 1500})
	ve := AsError(err)
	if ve == nil || ve.Code != CodeImportRejected || !strings.Contains(ve.Description, "nothing was written") {
		t.Fatalf("Import: %v", err)
	}
	want := []struct {
		line int
		code string
		say  string
	}{
		{2, "malformedDocument", "malformed JSON"},
		{4, "malformedDocument", "not a document"},
		{5, "invalidDocumentId", "no _id"},
		{6, "invalidDocumentId", "bad..id"},
		{7, "malformedDocument", "no _type"},
		{8, "duplicateId", "already on line 1"},
		{11, "documentTooLarge", "more than"},
		{9, "malformedTransaction", "_createdAt"},
		{10, "permissionDenied", "post-x"},
	}
	if len(rep.Rejected) != len(want) {
		t.Fatalf("rejected %+v", rep.Rejected)
	}
	for i, w := range want {
		r := rep.Rejected[i]
		if r.Line != w.line || r.Code != w.code || !strings.Contains(r.Reason, w.say) {
			t.Errorf("rejection %d: %+v, want line %d %s saying %q", i, r, w.line, w.code, w.say)
		}
	}
	if n := headSeq(t, e, "dst"); n != 0 {
		t.Errorf("a rejected import wrote %d events", n)
	}
	if rep.Lines != 12 {
		t.Errorf("lines %d", rep.Lines)
	}
}

// TestImportInterrupted: a batch that fails while writing (here: the
// transactor fails the second write) stops the import with
// importIncomplete naming what was committed; running it again completes
// it without applying the first batch twice. A read-only store fails the
// first write: nothing written.
func TestImportInterrupted(t *testing.T) {
	e := newTestEngine(t, "dst")
	ctx := context.Background()
	var file strings.Builder
	for i := range 5 {
		fmt.Fprintf(&file, `{"_id":"d%d","_type":"t"}`+"\n", i)
	}
	writes := 0
	flaky := func(ctx context.Context, body []byte) error {
		if !bytes.Contains(body, []byte(`"dryRun":true`)) {
			if writes++; writes == 2 {
				return &Error{Code: CodeUnavailable, Description: "daemon stopping"}
			}
		}
		return e.EngineTransactor("dst", SystemPrincipal)(ctx, body)
	}
	rep, err := Import(ctx, strings.NewReader(file.String()), flaky, ImportOptions{BatchSize: 2})
	ve := AsError(err)
	if ve.Code != CodeImportIncomplete || !strings.Contains(ve.Description, "batch 2 of 3 (lines 3 to 4)") || rep.Written != 2 || len(rep.Transactions) != 1 {
		t.Fatalf("interrupted import: %v, %+v", err, rep)
	}
	rep, err = Import(ctx, strings.NewReader(file.String()), e.EngineTransactor("dst", SystemPrincipal), ImportOptions{BatchSize: 2})
	if err != nil || rep.Written != 5 {
		t.Fatalf("resumed import: %v, %+v", err, rep)
	}
	if n := headSeq(t, e, "dst"); n != 3 {
		t.Errorf("%d events, want 3 (one per batch, none twice)", n)
	}

	ro := newTestEngine(t, "dst")
	dir := t.TempDir()
	if _, err := e.ReplayTo(ctx, "dst", SystemPrincipal, Point{}, dir, ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	ro.Close()
	ro, err = Open(dir+"/store", Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, err = Import(ctx, strings.NewReader(file.String()), ro.EngineTransactor("dst", SystemPrincipal), ImportOptions{})
	if ve := AsError(err); ve.Code != CodeReadOnly || !strings.Contains(ve.Description, "nothing was written") {
		t.Errorf("import into a read-only store: %v", err)
	}
}
