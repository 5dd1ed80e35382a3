package vellum

import (
	"bytes"
	"context"
	"testing"
	"time"
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
