package vellum

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vellum-db/vellum/projection/mutation"
)

// TestGroupedTransactions queues transactions while the writer is held, so
// that it takes them as one group, and checks that each still behaves as if
// alone and in order: later ones see earlier ones (through the writer's cache,
// before Pebble shows them), a rejected one writes nothing and does not
// disturb the others, a retried transaction id in the same group is answered
// from the log, a selection by query sees the earlier writes, watchers get
// every commit in order, the log verifies and a rebuild reproduces the
// projections byte for byte.
func TestGroupedTransactions(t *testing.T) {
	e := newTestEngine(t, "ds")
	mustTransact(t, e, "ds", `{"mutations":[{"create":{"_id":"base","_type":"g","n":1}}]}`)
	d, _ := e.dataset("ds")
	head := headSeq(t, e, "ds")
	w, err := e.Watch("ds", head, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	steps := []struct {
		tx     string
		code   string // expected error code, "" for success
		writes []string
	}{
		{`{"mutations":[{"create":{"_id":"a","_type":"g"}}]}`, "", []string{"a"}},
		{`{"mutations":[{"create":{"_id":"a","_type":"g"}}]}`, "documentAlreadyExists", nil},
		{`{"mutations":[{"patch":{"id":"a","set":{"x":1}}},{"patch":{"id":"base","inc":{"n":1}}}]}`, "", []string{"a", "base"}},
		{`{"mutations":[{"create":{"_id":"c","_type":"g"}},{"patch":{"id":"missing","set":{"x":1}}}]}`, "documentNotFound", nil},
		{`{"transactionId":"t1","mutations":[{"create":{"_id":"b","_type":"h"}}]}`, "", []string{"b"}},
		{`{"transactionId":"t1","mutations":[{"create":{"_id":"b","_type":"h"}}]}`, "", nil}, // the retry
		{`{"dryRun":true,"mutations":[{"create":{"_id":"z","_type":"g"}}]}`, "", nil},
		{`{"mutations":[{"delete":{"query":"*[_type == \"g\" && defined(x)]"}}]}`, "", []string{"a"}},
		{`{"mutations":[{"create":{"_id":"a","_type":"g","again":true}}]}`, "", []string{"a"}},
		{`{"mutations":[{"patch":{"id":"c","set":{"x":1}}}]}`, "documentNotFound", nil},
	}

	// Hold the writer, queue the steps in order, then let it go.
	held, release := make(chan struct{}), make(chan struct{})
	go d.w.submit(context.Background(), job{fn: func() error { close(held); <-release; return nil }})
	<-held
	groupsBefore := d.w.groupN
	type answer struct {
		res *TxResult
		err error
	}
	answers := make([]chan answer, len(steps))
	for i, st := range steps {
		answers[i] = make(chan answer, 1)
		queued := len(d.w.jobs)
		go func() {
			res, err := e.Transact(context.Background(), "ds", SystemPrincipal, []byte(st.tx))
			answers[i] <- answer{res, err}
		}()
		for len(d.w.jobs) == queued {
			time.Sleep(time.Millisecond)
		}
	}
	close(release)

	var first *TxResult
	wantSeq := head
	for i, st := range steps {
		a := <-answers[i]
		switch {
		case st.code != "":
			if a.err == nil || AsError(a.err).Code != st.code {
				t.Errorf("step %d: err %v, want %s", i, a.err, st.code)
			}
			continue
		case a.err != nil:
			t.Errorf("step %d: %v", i, a.err)
			continue
		}
		if i == 4 {
			first = a.res
		}
		if i == 5 && (first == nil || a.res.TransactionID != first.TransactionID) {
			t.Errorf("retry answered %+v, first answer %+v", a.res, first)
		}
		if len(st.writes) == 0 {
			continue
		}
		wantSeq++
		c, err := w.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c.Event.Seq != wantSeq || c.Event.TxID != a.res.TransactionID || len(c.Docs) != len(st.writes) {
			t.Fatalf("step %d: commit %d (%s, %d docs), want %d (%s, %d docs)", i, c.Event.Seq, c.Event.TxID, len(c.Docs), wantSeq, a.res.TransactionID, len(st.writes))
		}
		for j, id := range st.writes {
			if c.Docs[j].ID != id {
				t.Errorf("step %d: commit writes %s, want %s", i, c.Docs[j].ID, id)
			}
		}
	}
	if groups := d.w.groupN - groupsBefore; groups >= uint64(len(steps)) {
		t.Errorf("the writer made %d groups of %d queued transactions: it did not group them", groups, len(steps))
	}
	if h := headSeq(t, e, "ds"); h != wantSeq {
		t.Errorf("head %d, want %d: a rejected or retried transaction wrote an event", h, wantSeq)
	}
	if doc := getDoc(t, e, "ds", "a", ""); doc == nil || doc["again"] != true || doc["x"] != nil {
		t.Errorf("a = %v, want the re-created document", doc)
	}
	if doc := getDoc(t, e, "ds", "base", ""); doc == nil || doc["n"] != 2.0 {
		t.Errorf("base = %v, want n = 2", doc)
	}
	for _, id := range []string{"c", "z"} {
		if doc := getDoc(t, e, "ds", id, ""); doc != nil {
			t.Errorf("%s was written by a rejected transaction or a dry run: %v", id, doc)
		}
	}
	if n, err := e.Verify(context.Background(), "ds", nil); err != nil || n != wantSeq {
		t.Errorf("Verify = %d, %v; want %d events", n, err, wantSeq)
	}
	before := dumpDB(t, e.pebbleDB())
	if err := e.Rebuild(context.Background(), "ds"); err != nil {
		t.Fatal(err)
	}
	after := dumpDB(t, e.pebbleDB())
	for k, v := range before {
		if w, ok := after[k]; !ok || !bytes.Equal(v, w) {
			t.Errorf("key %q differs after rebuild", k)
		}
	}
	if len(before) != len(after) {
		t.Errorf("rebuild changed the number of keys: %d → %d", len(before), len(after))
	}
}

// TestGroupCommitGathers checks the group commit rule: while the previous
// group is on its way to disk, the writer keeps adding the transactions that
// arrive to the open group, and seals it, as one group, once that group is
// durable.
func TestGroupCommitGathers(t *testing.T) {
	e := newTestEngine(t, "ds")
	d, _ := e.dataset("ds")
	// Pretend a group is being synced.
	d.w.unsynced.Add(1)
	groupsBefore := d.w.groupN
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := e.Transact(context.Background(), "ds", SystemPrincipal, fmt.Appendf(nil, `{"mutations":[{"create":{"_id":"d%d","_type":"g"}}]}`, i))
			errs <- err
		}()
		// One at a time, so that they do not merely queue up behind each
		// other: the writer applies each, and then waits for more.
		time.Sleep(2 * time.Millisecond)
	}
	for len(d.w.jobs) > 0 {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-errs:
		t.Fatalf("a transaction was answered while its group was still open: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	// The pretended group is durable: the open group is sealed.
	d.w.unsynced.Add(-1)
	d.w.synced <- struct{}{}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if groups := d.w.groupN - groupsBefore; groups != 1 {
		t.Errorf("%d transactions that arrived during a sync made %d groups, want 1", n, groups)
	}
	// With nothing on its way to disk, a lone transaction is sealed at once.
	start := time.Now()
	mustTransact(t, e, "ds", `{"mutations":[{"create":{"_id":"lone","_type":"g"}}]}`)
	if groups := d.w.groupN - groupsBefore; groups != 2 {
		t.Errorf("the lone transaction made %d groups, want 1", groups-1)
	}
	t.Logf("lone transaction answered in %v", time.Since(start))
}

// TestTransactAsync checks TransactAsync: done is called exactly once per
// queued transaction, in order, with what Transact would return, and the
// transaction is durable by then; a transaction that cannot be queued
// returns its error at once and done is never called.
func TestTransactAsync(t *testing.T) {
	e := newTestEngine(t, "ds")
	type answer struct {
		i   int
		res *TxResult
		err error
	}
	const n = 50
	answers := make(chan answer, 2*n)
	for i := range n {
		body := fmt.Sprintf(`{"mutations":[{"create":{"_id":"d%d","_type":"g"}}]}`, i%40) // the last 10 already exist
		if err := e.TransactAsync(context.Background(), "ds", SystemPrincipal, []byte(body), func(res *TxResult, err error) {
			answers <- answer{i, res, err}
		}); err != nil {
			t.Fatalf("transaction %d not queued: %v", i, err)
		}
	}
	for want := range n {
		a := <-answers
		if a.i != want {
			t.Fatalf("answer for transaction %d came when %d was expected: answers out of order", a.i, want)
		}
		switch {
		case want < 40 && (a.err != nil || a.res == nil || len(a.res.Results) != 1 || a.res.Results[0].ID != fmt.Sprintf("d%d", want)):
			t.Errorf("transaction %d: %+v, %v", want, a.res, a.err)
		case want >= 40 && (a.err == nil || AsError(a.err).Code != "documentAlreadyExists"):
			t.Errorf("transaction %d: err %v, want documentAlreadyExists", want, a.err)
		}
	}
	d, _ := e.dataset("ds")
	if durable, head := d.w.durable.Load(), headSeq(t, e, "ds"); durable != head || head < 40 {
		t.Errorf("durable %d, head %d after every answer", durable, head)
	}

	never := func(*TxResult, error) { t.Error("done called for a transaction that was not queued") }
	for _, c := range []struct{ name, dataset, body, code string }{
		{"unknown dataset", "nope", `{"mutations":[]}`, CodeUnknownDataset},
		{"malformed body", "ds", `{"mutations":[{"create":`, mutation.CodeMalformedTransaction},
	} {
		err := e.TransactAsync(context.Background(), c.dataset, SystemPrincipal, []byte(c.body), never)
		if err == nil || AsError(err).Code != c.code {
			t.Errorf("%s: err %v, want %s", c.name, err, c.code)
		}
	}
	e.Close()
	if err := e.TransactAsync(context.Background(), "ds", SystemPrincipal, []byte(`{"mutations":[]}`), never); err == nil {
		t.Error("TransactAsync on a closed engine queued the transaction")
	}
	select {
	case a := <-answers:
		t.Errorf("an extra answer: %+v", a)
	default:
	}
}

// TestTransactDuringClose closes engines while 16 writers each transact in
// a loop: every call returns (committed, or refused as unavailable), none
// waits forever for a writer that stopped.
func TestTransactDuringClose(t *testing.T) {
	for round := range 20 {
		e := newTestEngine(t, "ds")
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := 0; ; i++ {
					_, err := e.Transact(context.Background(), "ds", SystemPrincipal, fmt.Appendf(nil, `{"mutations":[{"create":{"_id":"d%d-%d","_type":"g"}}]}`, g, i))
					if err != nil {
						if code := AsError(err).Code; code != CodeUnavailable && code != CodeUnknownDataset {
							t.Errorf("round %d: a transaction during Close failed with %v", round, err)
						}
						return
					}
				}
			})
		}
		time.Sleep(2 * time.Millisecond)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: a Transact call had not returned 10 s after Close", round)
		}
	}
}
