package vellum

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

func openTest(t testing.TB, dir string) *Engine {
	t.Helper()
	e, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return e
}

func newTestEngine(t testing.TB, datasets ...string) *Engine {
	t.Helper()
	e := openTest(t, t.TempDir())
	t.Cleanup(func() { e.Close() })
	for _, name := range datasets {
		if _, err := e.CreateDataset(context.Background(), SystemPrincipal, name, "public"); err != nil {
			t.Fatalf("CreateDataset(%q): %v", name, err)
		}
	}
	return e
}

func mustTransact(t testing.TB, e *Engine, ds, body string) *TxResult {
	t.Helper()
	res, err := e.Transact(context.Background(), ds, SystemPrincipal, []byte(body))
	if err != nil {
		t.Fatalf("Transact(%s): %v", body, err)
	}
	return res
}

func getDoc(t testing.TB, e *Engine, ds, id, perspective string) map[string]any {
	t.Helper()
	docs, err := e.Get(context.Background(), ds, SystemPrincipal, []string{id}, perspective)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	if len(docs) == 0 {
		return nil
	}
	var doc map[string]any
	if err := json.Unmarshal(docs[0], &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func headSeq(t testing.TB, e *Engine, ds string) uint64 {
	t.Helper()
	d, err := e.dataset(ds)
	if err != nil {
		t.Fatal(err)
	}
	seq, _, err := d.log.Head()
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// dumpDB returns every key and value in the store, for byte-level
// comparisons of whole states.
func dumpDB(t testing.TB, db *pebble.DB) map[string][]byte {
	t.Helper()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := map[string][]byte{}
	for it.First(); it.Valid(); it.Next() {
		out[string(it.Key())] = bytes.Clone(it.Value())
	}
	return out
}

func TestTransactAndGet(t *testing.T) {
	e := newTestEngine(t, "production")
	res := mustTransact(t, e, "production", `{"mutations":[
		{"create":{"_id":"post1","_type":"post","title":"Hello"}},
		{"create":{"_id":"drafts.post1","_type":"post","title":"Hello, draft"}}
	],"returnIds":true}`)
	if len(res.TransactionID) != 26 {
		t.Errorf("transactionId %q is not a ULID", res.TransactionID)
	}
	if got := fmt.Sprint(res.DocumentIDs); got != "[post1 drafts.post1]" {
		t.Errorf("documentIds = %s", got)
	}
	doc := getDoc(t, e, "production", "post1", "raw")
	if doc["title"] != "Hello" || doc["_rev"] != res.TransactionID || doc["_createdAt"] == nil || doc["_updatedAt"] == nil {
		t.Errorf("raw post1 = %v", doc)
	}
	if doc := getDoc(t, e, "production", "drafts.post1", "published"); doc != nil {
		t.Errorf("published perspective shows a draft: %v", doc)
	}
	doc = getDoc(t, e, "production", "post1", "drafts")
	if doc["title"] != "Hello, draft" || doc["_originalId"] != "drafts.post1" {
		t.Errorf("drafts perspective of post1 = %v", doc)
	}
	if _, err := e.Get(context.Background(), "production", SystemPrincipal, []string{"bad..id"}, ""); AsError(err).Code != "invalidDocumentId" {
		t.Errorf("Get with an invalid id: %v", err)
	}
	if _, err := e.Get(context.Background(), "production", SystemPrincipal, []string{"post1"}, "sideways"); AsError(err).Code != "invalidPerspective" {
		t.Errorf("Get with an unknown perspective: %v", err)
	}
}

func TestDatasets(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, dir)
	ctx := context.Background()
	if _, err := e.CreateDataset(ctx, SystemPrincipal, "staging", "private"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateDataset(ctx, SystemPrincipal, "production", ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, acl, code string }{
		{"staging", "public", CodeDatasetExists},
		{"Staging", "public", CodeInvalidDatasetName},
		{"-x", "public", CodeInvalidDatasetName},
		{"_system", "public", CodeInvalidDatasetName},
		{strings.Repeat("a", 65), "public", CodeInvalidDatasetName},
		{"ok", "open", CodeInvalidACL},
	} {
		if _, err := e.CreateDataset(ctx, SystemPrincipal, tc.name, tc.acl); AsError(err).Code != tc.code {
			t.Errorf("CreateDataset(%q, %q) = %v, want code %s", tc.name, tc.acl, err, tc.code)
		}
	}
	mustTransact(t, e, "staging", `{"mutations":[{"create":{"_id":"a","_type":"t"}}]}`)
	if _, err := e.Transact(ctx, "nope", SystemPrincipal, []byte(`{"mutations":[]}`)); AsError(err).Code != CodeUnknownDataset {
		t.Errorf("Transact on an unknown dataset: %v", err)
	}
	if _, err := e.Get(ctx, "nope", SystemPrincipal, []string{"a"}, ""); AsError(err).Code != CodeUnknownDataset {
		t.Errorf("Get on an unknown dataset: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, dir)
	defer e.Close()
	list, _ := e.Datasets(ctx, SystemPrincipal)
	if len(list) != 2 || list[0].Name != "production" || list[0].ACL != "public" || list[1].Name != "staging" || list[1].ACL != "private" || list[1].CreatedAt.IsZero() {
		t.Fatalf("datasets after reopen = %+v", list)
	}
	if doc := getDoc(t, e, "staging", "a", ""); doc == nil {
		t.Error("document lost across reopen")
	}
	// Datasets keep separate documents.
	if doc := getDoc(t, e, "production", "a", ""); doc != nil {
		t.Error("document of staging visible in production")
	}
}

func TestTransactionIDIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, dir)
	ctx := context.Background()
	e.CreateDataset(ctx, SystemPrincipal, "ds", "")
	body := `{"transactionId":"client-tx-1","mutations":[{"create":{"_id":"c","_type":"counter","n":0}}]}`
	first := mustTransact(t, e, "ds", body)
	if first.TransactionID != "client-tx-1" {
		t.Fatalf("transactionId = %q", first.TransactionID)
	}
	seq := headSeq(t, e, "ds")
	again := mustTransact(t, e, "ds", body)
	if again.TransactionID != first.TransactionID || len(again.Results) != 1 || again.Results[0].ID != first.Results[0].ID || again.Results[0].Operation != first.Results[0].Operation {
		t.Errorf("retry answered %+v, first answer was %+v", again, first)
	}
	if s := headSeq(t, e, "ds"); s != seq {
		t.Errorf("retry appended an event: head %d → %d", seq, s)
	}
	_, err := e.Transact(ctx, "ds", SystemPrincipal, []byte(`{"transactionId":"client-tx-1","mutations":[{"create":{"_id":"d","_type":"counter"}}]}`))
	if AsError(err).Code != CodeTransactionIDReused {
		t.Errorf("reuse with other mutations: %v", err)
	}
	e.Close()
	// Idempotency is permanent: it survives a restart.
	e = openTest(t, dir)
	defer e.Close()
	again = mustTransact(t, e, "ds", body)
	if again.TransactionID != "client-tx-1" || headSeq(t, e, "ds") != seq {
		t.Errorf("retry after reopen: %+v, head %d (want %d)", again, headSeq(t, e, "ds"), seq)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	e := newTestEngine(t, "ds")
	seq := headSeq(t, e, "ds")
	res := mustTransact(t, e, "ds", `{"dryRun":true,"returnDocuments":true,"mutations":[{"create":{"_id":"x","_type":"t","v":1}}]}`)
	if len(res.Results) != 1 || res.Results[0].Operation != "create" || !bytes.Contains(res.Results[0].Document, []byte(`"v":1`)) {
		t.Errorf("dry run result = %+v", res)
	}
	if headSeq(t, e, "ds") != seq || getDoc(t, e, "ds", "x", "") != nil {
		t.Error("dry run wrote")
	}
}

// Every kind of bad input is rejected as a whole with a stable code, the
// index of the failing mutation and a sentence, and writes nothing.
func TestBadInputChangesNothing(t *testing.T) {
	e := newTestEngine(t, "ds")
	mustTransact(t, e, "ds", `{"mutations":[{"create":{"_id":"doc","_type":"t","n":"text","arr":[1,2],"count":1}}]}`)
	rev := getDoc(t, e, "ds", "doc", "")["_rev"].(string)
	small, err := Open(t.TempDir(), Options{MaxDocumentSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	small.CreateDataset(context.Background(), SystemPrincipal, "ds", "")

	cases := []struct {
		name  string
		eng   *Engine
		ds    string
		body  string
		code  string
		index int // -1: no mutation to blame
	}{
		{"malformed JSON", e, "ds", `{"mutations":[{"create":`, "malformedTransaction", -1},
		{"unknown mutation kind", e, "ds", `{"mutations":[{"create":{"_id":"ok1","_type":"t"}},{"upsert":{"_id":"x"}}]}`, "unknownMutation", 1},
		{"invalid id", e, "ds", `{"mutations":[{"create":{"_id":"ok2","_type":"t"}},{"create":{"_id":"a..b","_type":"t"}}]}`, "invalidDocumentId", 1},
		{"patch on a missing document", e, "ds", `{"mutations":[{"create":{"_id":"ok3","_type":"t"}},{"patch":{"id":"missing","set":{"a":1}}}]}`, "documentNotFound", 1},
		{"ifRevisionID mismatch", e, "ds", `{"mutations":[{"patch":{"id":"doc","ifRevisionID":"not-the-rev","set":{"a":1}}}]}`, "documentRevisionIDDoesNotMatch", 0},
		{"create on an existing id", e, "ds", `{"mutations":[{"create":{"_id":"ok4","_type":"t"}},{"create":{"_id":"doc","_type":"t"}}]}`, "documentAlreadyExists", 1},
		{"inc on a non-number", e, "ds", `{"mutations":[{"patch":{"id":"doc","inc":{"n":1}}}]}`, "typeMismatch", 0},
		{"insert at a missing path", e, "ds", `{"mutations":[{"patch":{"id":"doc","insert":{"after":"nothere[-1]","items":[3]}}}]}`, "", 0},
		{"insert at a non-array path", e, "ds", `{"mutations":[{"patch":{"id":"doc","insert":{"after":"count[-1]","items":[3]}}}]}`, "", 0},
		{"oversized document", small, "ds", `{"mutations":[{"create":{"_id":"big","_type":"t","text":"` + strings.Repeat("x", 300) + `"}}]}`, "documentTooLarge", 0},
		{"unknown dataset", e, "nope", `{"mutations":[{"create":{"_id":"ok5","_type":"t"}}]}`, CodeUnknownDataset, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := dumpDB(t, tc.eng.pebbleDB())
			_, err := tc.eng.Transact(context.Background(), tc.ds, SystemPrincipal, []byte(tc.body))
			if err == nil {
				t.Fatal("accepted")
			}
			ae := AsError(err)
			if tc.code != "" && ae.Code != tc.code {
				t.Errorf("code = %q, want %q (%v)", ae.Code, tc.code, err)
			}
			if ae.Code == CodeInternal || ae.Description == "" {
				t.Errorf("error %+v is not a clear typed error", ae)
			}
			if tc.index >= 0 && (ae.Index == nil || *ae.Index != tc.index) {
				t.Errorf("index = %v, want %d (%v)", ae.Index, tc.index, err)
			}
			if tc.code == "documentRevisionIDDoesNotMatch" && !strings.Contains(ae.Description, rev) {
				t.Errorf("conflict error %q does not name the current revision %s", ae.Description, rev)
			}
			after := dumpDB(t, tc.eng.pebbleDB())
			if len(after) != len(before) {
				t.Fatalf("the store changed: %d keys → %d", len(before), len(after))
			}
			for k, v := range before {
				if !bytes.Equal(after[k], v) {
					t.Fatalf("the store changed at key %q", k)
				}
			}
		})
	}
}

// 50 writers increment one counter through ifRevisionID, retrying on
// conflict; the counter ends at exactly the number of increments.
func TestConcurrentCounter(t *testing.T) {
	e := newTestEngine(t, "ds")
	mustTransact(t, e, "ds", `{"mutations":[{"create":{"_id":"counter","_type":"counter","n":0}}]}`)
	const writers, each = 50, 10
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				docs, err := e.Get(context.Background(), "ds", SystemPrincipal, []string{"counter"}, "")
				if err != nil {
					errs <- err
					return
				}
				var doc struct {
					Rev string  `json:"_rev"`
					N   float64 `json:"n"`
				}
				json.Unmarshal(docs[0], &doc)
				body := fmt.Sprintf(`{"mutations":[{"patch":{"id":"counter","ifRevisionID":%q,"set":{"n":%v}}}]}`, doc.Rev, doc.N+1)
				_, err = e.Transact(context.Background(), "ds", SystemPrincipal, []byte(body))
				if err != nil {
					if AsError(err).Code == "documentRevisionIDDoesNotMatch" {
						conflicts.Add(1)
						continue
					}
					errs <- err
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := getDoc(t, e, "ds", "counter", "")["n"]; n != float64(writers*each) {
		t.Fatalf("counter = %v, want %d", n, writers*each)
	}
	t.Logf("%d increments, %d conflicts retried", writers*each, conflicts.Load())
}

// Rebuild drops the projections and replays the log; the result is
// byte-identical to the live state.
func TestRebuildIsByteIdentical(t *testing.T) {
	e := newTestEngine(t, "ds", "other")
	big := strings.Repeat("lorem ipsum ", 200)
	mustTransact(t, e, "ds", `{"mutations":[
		{"create":{"_id":"a","_type":"t","n":1,"body":"`+big+`","items":[{"_key":"k1","v":1}]}},
		{"create":{"_id":"drafts.a","_type":"t","n":2}},
		{"createOrReplace":{"_id":"b","_type":"t"}}]}`)
	for i := 0; i < 40; i++ {
		mustTransact(t, e, "ds", fmt.Sprintf(`{"mutations":[
			{"patch":{"id":"a","inc":{"n":1},"set":{"title":"v%d"},"insert":{"after":"items[-1]","items":[{"_key":"k%d","v":%d}]}}},
			{"createOrReplace":{"_id":"b","_type":"t","i":%d}}]}`, i, i+2, i, i))
		if i%7 == 3 {
			mustTransact(t, e, "ds", `{"mutations":[{"delete":{"id":"drafts.a"}}]}`)
			mustTransact(t, e, "ds", fmt.Sprintf(`{"mutations":[{"create":{"_id":"drafts.a","_type":"t","n":%d}}]}`, i))
		}
	}
	mustTransact(t, e, "other", `{"mutations":[{"create":{"_id":"z","_type":"t"}}]}`)
	before := dumpDB(t, e.pebbleDB())
	if err := e.Rebuild(context.Background(), "ds"); err != nil {
		t.Fatal(err)
	}
	after := dumpDB(t, e.pebbleDB())
	if len(before) != len(after) {
		t.Errorf("rebuild changed the number of keys: %d → %d", len(before), len(after))
	}
	for k, v := range before {
		if w, ok := after[k]; !ok || !bytes.Equal(v, w) {
			t.Errorf("key %q differs after rebuild", k)
		}
	}
	if n, err := e.Verify(context.Background(), "ds", nil); err != nil || n == 0 {
		t.Errorf("Verify = %d, %v", n, err)
	}
}

// Delete and patch by GROQ query, as Sanity's client sends multi-id patches.
func TestMutationsByQuery(t *testing.T) {
	e := newTestEngine(t, "ds")
	mustTransact(t, e, "ds", `{"mutations":[
		{"create":{"_id":"a","_type":"post","n":1}},
		{"create":{"_id":"b","_type":"post","n":2}},
		{"create":{"_id":"c","_type":"page","n":3}}]}`)
	res := mustTransact(t, e, "ds", `{"mutations":[{"patch":{"query":"*[_id in $ids]","params":{"ids":["a","c"]},"inc":{"n":10}}}]}`)
	if len(res.Results) != 2 {
		t.Fatalf("patch by query results = %+v", res.Results)
	}
	if getDoc(t, e, "ds", "a", "")["n"] != 11.0 || getDoc(t, e, "ds", "b", "")["n"] != 2.0 || getDoc(t, e, "ds", "c", "")["n"] != 13.0 {
		t.Error("patch by query changed the wrong documents")
	}
	mustTransact(t, e, "ds", `{"mutations":[{"delete":{"query":"*[_type == \"post\" && n > 5]"}}]}`)
	if getDoc(t, e, "ds", "a", "") != nil || getDoc(t, e, "ds", "b", "") == nil || getDoc(t, e, "ds", "c", "") == nil {
		t.Error("delete by query deleted the wrong documents")
	}
	_, err := e.Transact(context.Background(), "ds", SystemPrincipal, []byte(`{"mutations":[{"delete":{"query":"*[_type == "}}]}`))
	if ae := AsError(err); ae == nil || ae.Code != "queryParseError" || ae.Start == nil {
		t.Errorf("a malformed query: %+v, want queryParseError with a position", ae)
	}
}

// Reads during a rebuild wait for it: no read sees a half-built projection.
func TestReadsDuringRebuild(t *testing.T) {
	e := newTestEngine(t, "ds")
	var muts []string
	for i := 0; i < 2000; i++ {
		muts = append(muts, fmt.Sprintf(`{"create":{"_id":"d%d","_type":"t"}}`, i))
	}
	mustTransact(t, e, "ds", `{"mutations":[`+strings.Join(muts, ",")+`]}`)
	done := make(chan error, 1)
	go func() { done <- e.Rebuild(context.Background(), "ds") }()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		default:
		}
		if getDoc(t, e, "ds", "d1999", "") == nil {
			t.Fatal("a read during the rebuild missed a document")
		}
	}
}
