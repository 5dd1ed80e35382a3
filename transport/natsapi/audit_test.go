package natsapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
)

// TestAuditEndpoints exercises history, the transaction log (in pages: the
// log is many times a message), verification with progress and access at
// a time over a real NATS server, as an administrator and as everyone.
func TestAuditEndpoints(t *testing.T) {
	eng, admin, anon := newPagingFixture(t)
	ctx := ctxT(t)
	if _, err := eng.CreateDataset(ctx, vellum.SystemPrincipal, "blog", "public"); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("lorem ipsum ", 100)
	var txs []string
	for i := range 120 {
		tx := fmt.Sprintf(`{"mutations":[{"createOrReplace":{"_id":"post-%d","_type":"post","n":%d,"body":%q}},{"createOrReplace":{"_id":"secret.s","_type":"s","n":%d}}]}`, i%3, i, body, i)
		res, err := eng.Transact(ctx, "blog", vellum.SystemPrincipal, []byte(tx))
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, res.TransactionID)
	}
	at := time.Now().UTC().Format(time.RFC3339Nano)

	// History at a revision and at a time.
	docs, err := anon.History(ctx, "blog", natsapi.HistoryRequest{IDs: []string{"post-1"}, Revision: txs[4]})
	if err != nil || len(docs) != 1 || !strings.Contains(string(docs[0]), `"n":4`) {
		t.Fatalf("history at revision 5: %s, %v", docs, err)
	}
	docs, err = admin.History(ctx, "blog", natsapi.HistoryRequest{IDs: []string{"post-0", "secret.s"}, Time: at})
	if err != nil || len(docs) != 2 || !strings.Contains(string(docs[1]), `"n":119`) {
		t.Fatalf("history at %s: %s, %v", at, docs, err)
	}

	// The whole log, in pages, as an administrator and as everyone.
	count := func(c *natsapi.Client, r natsapi.TransactionsRequest) (n int, redacted int, last uint64) {
		t.Helper()
		err := c.Transactions(ctx, "blog", r, func(le *vellum.LogEntry) error {
			if last != 0 && (le.Seq > last) == r.Reverse {
				t.Fatalf("entry %d after %d (reverse %v)", le.Seq, last, r.Reverse)
			}
			n, last = n+1, le.Seq
			if le.Redacted {
				redacted++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, redacted, last
	}
	if n, red, _ := count(admin, natsapi.TransactionsRequest{}); n != 120 || red != 0 {
		t.Errorf("administrator: %d transactions (%d redacted), want 120 (0)", n, red)
	}
	if n, red, _ := count(anon, natsapi.TransactionsRequest{}); n != 120 || red != 120 {
		t.Errorf("everyone: %d transactions (%d redacted), want 120 (120)", n, red)
	}
	if n, _, last := count(admin, natsapi.TransactionsRequest{IDs: []string{"post-2"}, Reverse: true, Limit: 25}); n != 25 || last != 120-24*3 {
		t.Errorf("post-2, newest 25: %d transactions ending at %d", n, last)
	}
	if n, _, _ := count(admin, natsapi.TransactionsRequest{From: txs[10], To: "20"}); n != 10 {
		t.Errorf("from a transaction to an event: %d, want 10", n)
	}

	// Verification, with progress messages, and access at a time.
	var mu sync.Mutex
	var progress []uint64
	n, err := admin.Verify(ctx, "blog", func(done, total uint64) {
		mu.Lock()
		defer mu.Unlock()
		if total != 120 {
			t.Errorf("progress total %d, want 120", total)
		}
		progress = append(progress, done)
	})
	if err != nil || n != 120 {
		t.Fatalf("verify: %d, %v", n, err)
	}
	if n, err := admin.Verify(ctx, "_system", nil); err != nil || n == 0 {
		t.Errorf("verify _system: %d, %v", n, err)
	}
	time.Sleep(100 * time.Millisecond) // the last progress message may trail the answer
	mu.Lock()
	if len(progress) == 0 || progress[len(progress)-1] != 120 {
		t.Errorf("progress messages %v, want a last one at 120", progress)
	}
	mu.Unlock()
	rep, err := admin.AccessAt(ctx, "blog", "post-1", at)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	if rep.ACL != "public" || len(rep.Read.Identities) == 0 || rep.Read.Identities[0].Identity != "everyone" || len(rep.Update.Roles) != 3 {
		t.Errorf("access report: %s", b)
	}

	// Bad input: typed errors.
	for _, tt := range []struct {
		name string
		call func() error
		code string
	}{
		{"history with revision and time", func() error {
			_, err := admin.History(ctx, "blog", natsapi.HistoryRequest{IDs: []string{"post-1"}, Revision: txs[0], Time: at})
			return err
		}, "invalidRequest"},
		{"history with a malformed time", func() error {
			_, err := admin.History(ctx, "blog", natsapi.HistoryRequest{IDs: []string{"post-1"}, Time: "yesterday"})
			return err
		}, "invalidTime"},
		{"history of an unknown transaction", func() error {
			_, err := admin.History(ctx, "blog", natsapi.HistoryRequest{IDs: []string{"post-1"}, Revision: "nope"})
			return err
		}, "unknownTransaction"},
		{"history before the dataset", func() error {
			_, err := admin.History(ctx, "blog", natsapi.HistoryRequest{IDs: []string{"post-1"}, Time: "2001-01-01T00:00:00Z"})
			return err
		}, "timeBeforeDataset"},
		{"log from a malformed time", func() error {
			return admin.Transactions(ctx, "blog", natsapi.TransactionsRequest{From: "2026-13-01"}, func(*vellum.LogEntry) error { return nil })
		}, "invalidTime"},
		{"verify as everyone", func() error { _, err := anon.Verify(ctx, "blog", nil); return err }, "permissionDenied"},
		{"verify an unknown dataset", func() error { _, err := admin.Verify(ctx, "nope", nil); return err }, "unknownDataset"},
		{"access of an unknown document", func() error { _, err := admin.AccessAt(ctx, "blog", "nope", at); return err }, "documentNotFound"},
		{"access at a malformed time", func() error { _, err := admin.AccessAt(ctx, "blog", "post-1", "noon"); return err }, "invalidTime"},
	} {
		err := tt.call()
		if e, ok := err.(*vellum.Error); !ok || e.Code != tt.code {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.code)
		}
	}
}
