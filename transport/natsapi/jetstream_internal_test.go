package natsapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/eventlog"
)

// TestStreamMessageFits: an event that does not fit in one NATS message
// loses its documents, then its mutations, never its identity, effects or
// hash chain.
func TestStreamMessageFits(t *testing.T) {
	doc := `{"_id":"a","_rev":"tx1","_type":"t","body":"` + strings.Repeat("x", 5000) + `"}`
	mutation := func(n int) json.RawMessage {
		return json.RawMessage(`[{"create":{"_id":"a","_type":"t","body":"` + strings.Repeat("x", n) + `"}}]`)
	}
	for _, c := range []struct {
		name             string
		mutations        json.RawMessage
		maxPayload       int64
		docOmitted       bool
		mutationsOmitted bool
	}{
		{"fits", mutation(10), 1 << 20, false, false},
		{"no limit known", mutation(5000), 0, false, false},
		{"documents too large", mutation(10), 4096, true, false},
		{"mutations too large as well", mutation(5000), 4096, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			commit := &vellum.Commit{
				Dataset: "blog",
				Event: &eventlog.Event{
					Seq: 3, TxID: "tx1", Time: time.Date(2026, 11, 23, 12, 0, 0, 5, time.UTC), Identity: "alice",
					Mutations: c.mutations,
					Effects:   []eventlog.Effect{{DocID: "a", Operation: eventlog.OpCreate, NewRev: "tx1", Grant: eventlog.GrantRef{Group: "_.groups.editors", Index: 1}}},
					Hash:      [32]byte{1},
				},
				Docs: []vellum.CommitDoc{{ID: "a", AfterJSON: []byte(doc)}},
			}
			m, err := streamMessage("blog", "vellum.v1.events.blog", commit, c.maxPayload)
			if err != nil {
				t.Fatal(err)
			}
			if c.maxPayload > 0 && int64(len(m.Data)) > c.maxPayload {
				t.Errorf("the body is %d bytes, over the %d limit", len(m.Data), c.maxPayload)
			}
			var ev StreamEvent
			if err := json.Unmarshal(m.Data, &ev); err != nil {
				t.Fatal(err)
			}
			ef := ev.Effects[0]
			if ef.DocumentOmitted != c.docOmitted || (string(ef.Document) == "null") != c.docOmitted {
				t.Errorf("document omitted %v (document %.40s), want %v", ef.DocumentOmitted, ef.Document, c.docOmitted)
			}
			if ev.MutationsOmitted != c.mutationsOmitted || (string(ev.Mutations) == "null") != c.mutationsOmitted {
				t.Errorf("mutations omitted %v (mutations %.40s), want %v", ev.MutationsOmitted, ev.Mutations, c.mutationsOmitted)
			}
			if ev.ID != "tx1" || ev.Seq != 3 || ev.Author != "alice" || ev.Timestamp != "2026-11-23T12:00:00.000000005Z" ||
				ef.ID != "a" || ef.Operation != "create" || ef.ResultRev != "tx1" || ef.Grant != (StreamGrant{"_.groups.editors", 1}) ||
				ev.Hash != "01"+strings.Repeat("0", 62) {
				t.Errorf("event = %+v", ev)
			}
			for h, want := range map[string]string{"Nats-Msg-Id": "tx1", SeqHeader: "3", DatasetHeader: "blog", HashHeader: ev.Hash} {
				if got := m.Header.Get(h); got != want {
					t.Errorf("header %s = %q, want %q", h, got, want)
				}
			}
		})
	}
}
