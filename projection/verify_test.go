package projection

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
)

// rewriteChain replaces event seq of w's log by what edit makes of it and
// re-hashes every later event, as someone who rewrites history with write
// access to the store (but not to the projections) would: the chain is
// intact afterwards.
func rewriteChain(t *testing.T, w *world, seq uint64, edit func(ev *eventlog.Event)) {
	t.Helper()
	prev := [32]byte{}
	if seq > 1 {
		ev, err := w.log.Get(seq - 1)
		if err != nil {
			t.Fatal(err)
		}
		prev = ev.Hash
	}
	b := w.db.Pebble().NewBatch()
	defer b.Close()
	for s := seq; s <= w.seq; s++ {
		ev, err := w.log.Get(s)
		if err != nil {
			t.Fatal(err)
		}
		if s == seq {
			edit(ev)
		}
		ev.PrevHash = prev
		enc, err := eventlog.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Set(eventlog.EventKey(w.log.Dataset(), s), enc, nil); err != nil {
			t.Fatal(err)
		}
		prev = ev.Hash
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// firstKey returns the first key of keyspace space of w's dataset at or
// after the given suffix.
func firstKey(t *testing.T, w *world, space byte, suffix string) ([]byte, []byte) {
	t.Helper()
	it, err := w.db.Pebble().NewIter(&pebble.IterOptions{
		LowerBound: append(eventlog.KeyPrefix(w.log.Dataset(), space), suffix...),
		UpperBound: eventlog.KeyUpperBound(w.log.Dataset(), space),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if !it.First() {
		t.Fatalf("no key in keyspace %c from %q", space, suffix)
	}
	return bytes.Clone(it.Key()), bytes.Clone(it.Value())
}

func set(t *testing.T, w *world, k, v []byte) {
	t.Helper()
	if err := w.db.Pebble().Set(k, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

func del(t *testing.T, w *world, k []byte) {
	t.Helper()
	if err := w.db.Pebble().Delete(k, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyCatchesTampering alters the store in one way per case, directly
// in Pebble, and checks that Verify reports it: the error's code, and for a
// projection mismatch its keyspace, document and event.
func TestVerifyCatchesTampering(t *testing.T) {
	type want struct {
		code  string
		space string // projectionMismatch only
		id    string
		seq   uint64
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, w *world)
		want   want
	}{
		{"untouched", func(*testing.T, *world) {}, want{}},
		{"event byte flipped", func(t *testing.T, w *world) {
			k := eventlog.EventKey(w.log.Dataset(), 5)
			v, closer, err := w.db.Pebble().Get(k)
			if err != nil {
				t.Fatal(err)
			}
			v = bytes.Clone(v)
			closer.Close()
			i := bytes.Index(v, []byte(`"title`)) // inside a document: still decodes
			if i < 0 {
				i = len(v) - 40 // inside prevHash
			}
			v[i+1] ^= 0x20
			set(t, w, k, v)
		}, want{code: eventlog.CodeChainBroken}},
		{"event deleted", func(t *testing.T, w *world) {
			del(t, w, eventlog.EventKey(w.log.Dataset(), 7))
		}, want{code: eventlog.CodeChainBroken}},
		{"event rewritten and chain re-hashed", func(t *testing.T, w *world) {
			rewriteChain(t, w, 3, func(ev *eventlog.Event) {
				ev.Effects[0].Doc = []byte(`{"_id":"doc-a","_rev":"tx-3","_type":"post","title":"forged"}`)
				ev.Effects[0].Diff = nil
			})
		}, want{code: CodeProjectionMismatch, space: "history", id: "doc-a", seq: 3}},
		{"current document altered", func(t *testing.T, w *world) {
			k, v := firstKey(t, w, eventlog.SpaceDocs, "doc-b")
			set(t, w, k, bytes.Replace(v, []byte(`"post"`), []byte(`"page"`), 1))
		}, want{code: CodeProjectionMismatch, space: "documents", id: "doc-b", seq: 6}},
		{"current document removed", func(t *testing.T, w *world) {
			k, _ := firstKey(t, w, eventlog.SpaceDocs, "doc-b")
			del(t, w, k)
		}, want{code: CodeProjectionMismatch, space: "documents", id: "doc-b", seq: 6}},
		{"document added", func(t *testing.T, w *world) {
			k, v := firstKey(t, w, eventlog.SpaceDocs, "doc-b")
			set(t, w, append(k, 'z'), v)
		}, want{code: CodeProjectionMismatch, space: "documents", id: "doc-bz"}},
		{"history entry removed", func(t *testing.T, w *world) {
			del(t, w, w.store.historyKey("doc-a", 3))
		}, want{code: CodeProjectionMismatch, space: "history", id: "doc-a", seq: 3}},
		{"history entry points to another effect", func(t *testing.T, w *world) {
			set(t, w, w.store.historyKey("doc-b", 4), []byte{histPatch, 1})
		}, want{code: CodeProjectionMismatch, space: "history", id: "doc-b", seq: 4}},
		{"snapshot altered", func(t *testing.T, w *world) {
			k := w.store.historyKey("doc-c", 6)
			v, closer, err := w.db.Pebble().Get(k)
			if err != nil {
				t.Fatal(err)
			}
			v = bytes.Clone(v)
			closer.Close()
			if v[0] != histSnapshot {
				t.Fatalf("entry of doc-c at 6 is %q, not a snapshot", v[0])
			}
			set(t, w, k, bytes.Replace(v, []byte(`"n":2`), []byte(`"n":3`), 1))
		}, want{code: CodeProjectionMismatch, space: "history", id: "doc-c", seq: 6}},
		{"history entry added", func(t *testing.T, w *world) {
			set(t, w, w.store.historyKey("doc-a", 2), []byte{histDeleted, 0})
		}, want{code: CodeProjectionMismatch, space: "history", id: "doc-a", seq: 2}},
		{"time index entry removed", func(t *testing.T, w *world) {
			ev, err := w.log.Get(4)
			if err != nil {
				t.Fatal(err)
			}
			del(t, w, eventlog.TimeKey(w.log.Dataset(), ev.Time, 4))
		}, want{code: CodeProjectionMismatch, space: "timeIndex", seq: 4}},
		{"transaction index entry points elsewhere", func(t *testing.T, w *world) {
			set(t, w, eventlog.TxKey(w.log.Dataset(), txid(2)), binary.BigEndian.AppendUint64(nil, 5))
		}, want{code: CodeProjectionMismatch, space: "txIndex", seq: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, 3)
			w.store.policy = SnapshotPolicy{MaxRevisions: 2}
			big := strings.Repeat("long text ", 50)
			w.commit(change{id: "doc-a", doc: map[string]any{"_type": "post", "title": "a1"}})                          // 1
			w.commit(change{id: "doc-b", doc: map[string]any{"_type": "post", "title": "b1", "body": big}})             // 2
			w.commit(change{id: "doc-a", doc: map[string]any{"_type": "post", "title": "a2"}, diff: true})              // 3
			w.commit(change{id: "doc-b", doc: map[string]any{"_type": "post", "title": "b2", "body": big}, diff: true}, // 4
				change{id: "doc-c", doc: map[string]any{"_type": "post", "n": 1.0, "body": big}})
			w.commit(change{id: "doc-c", doc: map[string]any{"_type": "post", "n": 1.5, "body": big}, diff: true}) // 5
			w.commit(change{id: "doc-c", doc: map[string]any{"_type": "post", "n": 2.0, "body": big}, diff: true}, // 6: a snapshot (2 diffs)
				change{id: "doc-b", doc: map[string]any{"_type": "post", "title": "b3", "body": big}, diff: true})
			w.commit(change{id: "doc-a"}) // 7: delete
			w.commit(change{id: "doc-a", doc: map[string]any{"_type": "post", "title": "a3"}})
			randomStream(w, rand.New(rand.NewPCG(1, 2)), 200)

			tt.tamper(t, w)
			n, err := w.store.Verify(context.Background(), nil)
			if tt.want.code == "" {
				if err != nil {
					t.Fatalf("Verify of an untouched store: %v", err)
				}
				if n != w.seq {
					t.Fatalf("Verify checked %d events, the log has %d", n, w.seq)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify did not notice (%d events checked)", n)
			}
			var c interface{ ErrorCode() string }
			if !errors.As(err, &c) || c.ErrorCode() != tt.want.code {
				t.Fatalf("Verify: %v; want code %s", err, tt.want.code)
			}
			var m *Mismatch
			if errors.As(err, &m) {
				if m.Space != tt.want.space || m.DocID != tt.want.id || m.Seq != tt.want.seq {
					t.Errorf("Verify: %v\ngot space %s, document %q, event %d; want %s, %q, %d",
						err, m.Space, m.DocID, m.Seq, tt.want.space, tt.want.id, tt.want.seq)
				}
				if m.Expected == "" || m.Found == "" {
					t.Errorf("mismatch without expected or found: %+v", m)
				}
			}
			t.Log(err)
		})
	}
}

// TestVerifyAfterRebuild checks that a rebuilt projection verifies, and the
// progress calls.
func TestVerifyAfterRebuild(t *testing.T) {
	t.Run("versions held", func(t *testing.T) { testVerifyAfterRebuild(t) })
	t.Run("no version held", func(t *testing.T) {
		defer func(h int) { verifyHold = h }(verifyHold)
		verifyHold = 1 // every diff reads its previous version back from the history index
		testVerifyAfterRebuild(t)
	})
}

func testVerifyAfterRebuild(t *testing.T) {
	w := newWorld(t, 4)
	w.store.policy = SnapshotPolicy{MaxRevisions: 3}
	randomStream(w, rand.New(rand.NewPCG(3, 4)), 500)
	if _, err := w.store.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := w.store.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	var calls []uint64
	n, err := w.store.Verify(context.Background(), func(n uint64) { calls = append(calls, n) })
	if err != nil || n != 500 {
		t.Fatalf("Verify after Rebuild: %d, %v; want 500 events, no error", n, err)
	}
	if len(calls) == 0 || calls[len(calls)-1] != 500 {
		t.Errorf("progress calls %v, want a last call with 500", calls)
	}
}
