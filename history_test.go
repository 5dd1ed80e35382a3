package vellum

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vellum-db/vellum/authz"
)

// eventTime returns the commit time of event seq of dataset ds.
func eventTime(t *testing.T, e *Engine, ds string, seq uint64) time.Time {
	t.Helper()
	d, err := e.dataset(ds)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := d.log.Get(seq)
	if err != nil {
		t.Fatal(err)
	}
	return ev.Time
}

// historyFixture writes five transactions to dataset "blog" and returns
// their ids and times: post p1 created, updated twice (the second by a
// patch), a secret document, p1 deleted.
func historyFixture(t *testing.T) (e *Engine, txs []string, times []time.Time) {
	t.Helper()
	e = newTestEngine(t, "blog")
	for _, body := range []string{
		`{"mutations":[{"create":{"_id":"p1","_type":"post","title":"one"}}]}`,
		`{"mutations":[{"createOrReplace":{"_id":"p1","_type":"post","title":"two"}}]}`,
		`{"mutations":[{"patch":{"id":"p1","set":{"title":"three"}}},{"create":{"_id":"secret.s1","_type":"note"}}]}`,
		`{"mutations":[{"create":{"_id":"p2","_type":"post","title":"other"}}]}`,
		`{"mutations":[{"delete":{"id":"p1"}}]}`,
	} {
		time.Sleep(2 * time.Millisecond) // distinct times
		res := mustTransact(t, e, "blog", body)
		txs = append(txs, res.TransactionID)
	}
	for i := range txs {
		times = append(times, eventTime(t, e, "blog", uint64(i+1)))
	}
	return e, txs, times
}

func titles(t *testing.T, docs []json.RawMessage) string {
	t.Helper()
	var out []string
	for _, raw := range docs {
		var d map[string]any
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%v:%v", d["_id"], d["title"]))
	}
	return strings.Join(out, " ")
}

func TestHistoryDocuments(t *testing.T) {
	e, txs, times := historyFixture(t)
	ctx := context.Background()
	tests := []struct {
		name string
		p    *authz.Principal
		ids  []string
		opts HistoryOptions
		want string // titles, or the error code
	}{
		{"revision of the create", SystemPrincipal, []string{"p1"}, HistoryOptions{Revision: txs[0]}, "p1:one"},
		{"revision of a replace", SystemPrincipal, []string{"p1"}, HistoryOptions{Revision: txs[1]}, "p1:two"},
		{"revision of a patch", SystemPrincipal, []string{"p1"}, HistoryOptions{Revision: txs[2]}, "p1:three"},
		{"time of an event", SystemPrincipal, []string{"p1"}, HistoryOptions{Time: times[1]}, "p1:two"},
		{"time between events", SystemPrincipal, []string{"p1"}, HistoryOptions{Time: times[3].Add(-time.Nanosecond)}, "p1:three"},
		{"two documents", SystemPrincipal, []string{"p2", "p1"}, HistoryOptions{Time: times[3]}, "p2:other p1:three"},
		{"everyone reads a public one", authz.Anonymous(), []string{"p1"}, HistoryOptions{Time: times[2]}, "p1:three"},
		{"everyone may not read a private one", authz.Anonymous(), []string{"secret.s1"}, HistoryOptions{Time: times[2]}, "documentNotFound"},
		{"deleted then", SystemPrincipal, []string{"p1"}, HistoryOptions{Time: times[4]}, "documentNotFound"},
		{"not created yet", SystemPrincipal, []string{"p2"}, HistoryOptions{Time: times[0]}, "documentNotFound"},
		{"never existed", SystemPrincipal, []string{"nope"}, HistoryOptions{Time: times[4]}, "documentNotFound"},
		{"revision that did not write it", SystemPrincipal, []string{"p2"}, HistoryOptions{Revision: txs[0]}, "documentNotFound"},
		{"revision that deleted it", SystemPrincipal, []string{"p1"}, HistoryOptions{Revision: txs[4]}, "documentNotFound"},
		{"unknown revision", SystemPrincipal, []string{"p1"}, HistoryOptions{Revision: "no-such-tx"}, "unknownTransaction"},
		{"revision and time", SystemPrincipal, []string{"p1"}, HistoryOptions{Revision: txs[0], Time: times[0]}, "invalidRequest"},
		{"neither", SystemPrincipal, []string{"p1"}, HistoryOptions{}, "invalidRequest"},
		{"no id", SystemPrincipal, nil, HistoryOptions{Time: times[0]}, "invalidRequest"},
		{"invalid id", SystemPrincipal, []string{"a..b"}, HistoryOptions{Time: times[0]}, "invalidDocumentId"},
		{"before the dataset", SystemPrincipal, []string{"p1"}, HistoryOptions{Time: times[0].Add(-time.Hour)}, "timeBeforeDataset"},
		{"in the future", SystemPrincipal, []string{"p1"}, HistoryOptions{Time: time.Now().Add(time.Hour)}, "invalidTime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := e.HistoryDocuments(ctx, "blog", tt.p, tt.ids, tt.opts)
			got := ""
			if err != nil {
				got = AsError(err).Code
				if AsError(err).Description == "" {
					t.Errorf("error without description: %#v", err)
				}
			} else {
				got = titles(t, docs)
			}
			if got != tt.want {
				t.Errorf("got %s (%v), want %s", got, err, tt.want)
			}
		})
	}
	if _, err := e.HistoryDocuments(ctx, "nope", SystemPrincipal, []string{"p1"}, HistoryOptions{Time: times[0]}); AsError(err).Code != CodeUnknownDataset {
		t.Errorf("unknown dataset: %v", err)
	}
}

// logSummary lists entries as "seq:author:ids" (with "!" for a redacted
// transaction).
func logSummary(t *testing.T, e *Engine, p *authz.Principal, f LogFilter) string {
	t.Helper()
	var out []string
	for le, err := range e.TransactionLog(context.Background(), "blog", p, f) {
		if err != nil {
			return AsError(err).Code
		}
		s := fmt.Sprintf("%d:%s", le.Seq, strings.Join(le.DocumentIDs, ","))
		if le.Redacted {
			s += "!"
		}
		if len(le.Effects) != len(le.DocumentIDs) {
			t.Errorf("entry %d: %d effects for %d ids", le.Seq, len(le.Effects), len(le.DocumentIDs))
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func TestTransactionLog(t *testing.T) {
	e, txs, times := historyFixture(t)
	alice := user("alice")
	mustTransact(t, e, "blog", `{"mutations":[{"create":{"_id":"_.groups.writers","_type":"system.group","members":["alice"],"grants":[{"path":"**","permissions":["read","create","update"]}]}}]}`)
	if _, err := transactAs(e, "blog", alice, `{"mutations":[{"create":{"_id":"p3","_type":"post","title":"by alice"}}]}`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    *authz.Principal
		f    LogFilter
		want string
	}{
		{"everything", SystemPrincipal, LogFilter{}, "1:p1 2:p1 3:p1,secret.s1 4:p2 5:p1 6:_.groups.writers 7:p3"},
		{"reverse with a limit", SystemPrincipal, LogFilter{Reverse: true, Limit: 2}, "7:p3 6:_.groups.writers"},
		{"one document", SystemPrincipal, LogFilter{IDs: []string{"p1"}}, "1:p1 2:p1 3:p1,secret.s1 5:p1"},
		{"two documents, reversed", SystemPrincipal, LogFilter{IDs: []string{"p2", "secret.s1"}, Reverse: true}, "4:p2 3:p1,secret.s1"},
		{"from and to transactions", SystemPrincipal, LogFilter{From: Point{TxID: txs[1]}, To: Point{TxID: txs[3]}}, "2:p1 3:p1,secret.s1 4:p2"},
		{"from a time between events", SystemPrincipal, LogFilter{From: Point{Time: times[3].Add(-time.Nanosecond)}, To: Point{Time: times[4]}}, "4:p2 5:p1"},
		{"from before the dataset", SystemPrincipal, LogFilter{From: Point{Time: times[0].Add(-time.Hour)}, To: Point{Seq: 2}}, "1:p1 2:p1"},
		{"from after to", SystemPrincipal, LogFilter{From: Point{Seq: 4}, To: Point{Seq: 2}}, ""},
		{"by author", SystemPrincipal, LogFilter{Author: "alice"}, "7:p3"},
		{"after a page", SystemPrincipal, LogFilter{After: 5, Limit: 1}, "6:_.groups.writers"},
		{"before a page, reversed", SystemPrincipal, LogFilter{After: 3, Reverse: true}, "2:p1 1:p1"},
		{"everyone: no private documents, redacted mutations", authz.Anonymous(), LogFilter{}, "1:p1 2:p1 3:p1! 4:p2 5:p1 7:p3"},
		{"a group member reads what its grant covers", alice, LogFilter{To: Point{Seq: 6}}, "1:p1 2:p1 3:p1,secret.s1 4:p2 5:p1 6:_.groups.writers"},
		{"unknown transaction", SystemPrincipal, LogFilter{From: Point{TxID: "nope"}}, "unknownTransaction"},
		{"to before the dataset", SystemPrincipal, LogFilter{To: Point{Time: times[0].Add(-time.Hour)}}, "timeBeforeDataset"},
		{"from in the future", SystemPrincipal, LogFilter{From: Point{Time: time.Now().Add(time.Hour)}}, "invalidTime"},
		{"to beyond the head", SystemPrincipal, LogFilter{To: Point{Seq: 99}}, "eventNotFound"},
		{"negative limit", SystemPrincipal, LogFilter{Limit: -1}, "invalidRequest"},
		{"invalid id", SystemPrincipal, LogFilter{IDs: []string{"-x"}}, "invalidDocumentId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := logSummary(t, e, tt.p, tt.f); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}

	// The shape of one entry: Sanity's fields, Vellum's effects.
	var entry *LogEntry
	for le, err := range e.TransactionLog(context.Background(), "blog", SystemPrincipal, LogFilter{From: Point{Seq: 3}, Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		entry = le
	}
	b, _ := json.Marshal(entry)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "timestamp", "author", "documentIDs", "mutations", "effects", "previousHash", "hash"} {
		if _, ok := m[k]; !ok {
			t.Errorf("entry has no %q: %s", k, b)
		}
	}
	p1 := entry.Effects["p1"]
	if p1.Operation != "update" || p1.PreviousRev != txs[1] || p1.ResultRev != txs[2] || p1.Grant.Group != "_.groups.administrator" {
		t.Errorf("effect on p1: %+v", p1)
	}
	if (p1.Document == nil) == (p1.Diff == nil) {
		t.Errorf("effect on p1 has both or neither of document and diff: %s", b)
	}
	if entry.Timestamp != times[2].UTC().Format(time.RFC3339Nano) || entry.ID != txs[2] || string(entry.Mutations) == "null" {
		t.Errorf("entry: %s", b)
	}
}
