package projection

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/vellum-db/vellum/eventlog"
)

// randomDoc returns a document with a few fields, some of them large enough
// that edits are logged as diffs.
func randomDoc(rng *rand.Rand, prev map[string]any) map[string]any {
	doc := map[string]any{"_type": "post"}
	for k, v := range prev {
		if !strings.HasPrefix(k, "_") {
			doc[k] = v
		}
	}
	switch rng.IntN(4) {
	case 0:
		doc["title"] = fmt.Sprintf("title %d", rng.IntN(1000))
	case 1:
		doc["body"] = strings.Repeat(fmt.Sprintf("word%d ", rng.IntN(10)), 20+rng.IntN(200))
	case 2:
		tags := []any{}
		for range rng.IntN(6) {
			tags = append(tags, map[string]any{"_key": fmt.Sprint(rng.IntN(100)), "n": float64(rng.IntN(10))})
		}
		doc["tags"] = tags
	case 3:
		delete(doc, "title")
		doc["count"] = float64(rng.IntN(1 << 20))
	}
	return doc
}

// randomStream commits n random events to w: creates, diff and full
// updates, deletes and re-creates of drafts and published documents, with
// up to three effects per event.
func randomStream(w *world, rng *rand.Rand, n int) {
	ids := []string{"a", "b", "c", "drafts.a", "drafts.b", "versions.r.c", "x.y", "long-" + strings.Repeat("z", 100)}
	for range n {
		var cs []change
		used := map[string]bool{}
		for range 1 + rng.IntN(3) {
			id := ids[rng.IntN(len(ids))]
			if used[id] {
				continue
			}
			used[id] = true
			prev := w.docs[id]
			switch r := rng.IntN(10); {
			case prev != nil && r == 0:
				cs = append(cs, change{id: id})
			default:
				cs = append(cs, change{id: id, doc: randomDoc(rng, prev), diff: r < 7})
			}
		}
		w.commit(cs...)
	}
}

func TestRebuildIdentical(t *testing.T) {
	for _, tt := range []struct {
		events int
		policy SnapshotPolicy
		batch  int // bytes per rebuild batch
		hold   int // bytes of current documents held in memory
	}{
		{300, DefaultSnapshotPolicy, defaultRebuildBatch, defaultRebuildHold},
		{300, SnapshotPolicy{MaxRevisions: 3}, 1, defaultRebuildHold},
		{300, SnapshotPolicy{MaxRevisions: 3}, defaultRebuildBatch, 1},
		{2000, DefaultSnapshotPolicy, 4096, 2048},
		{2000, SnapshotPolicy{MaxRevisions: 2}, 64 << 10, 1},
	} {
		t.Run(fmt.Sprintf("%d events, snapshot every %d, %d-byte batches, %d bytes held", tt.events, tt.policy.MaxRevisions, tt.batch, tt.hold), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tt.events), uint64(tt.policy.MaxRevisions)))
			w := newWorld(t, 9)
			w.store.policy = tt.policy
			w.store.rebuildBatch = tt.batch
			w.store.rebuildHold = tt.hold
			other := attachWorld(t, w.db, 10) // a neighbour that must stay untouched
			randomStream(other, rng, 50)
			otherBefore := dumpProjection(t, w.db, 10)

			randomStream(w, rng, tt.events)
			live := dumpProjection(t, w.db, 9)
			kinds := map[byte]int{}
			for _, e := range live {
				if e.k[4] == eventlog.SpaceHistory {
					kinds[e.v[0]]++
				}
			}
			t.Logf("%d keys; history entries: %d full, %d diff, %d snapshot, %d deleted", len(live), kinds[histDoc], kinds[histPatch], kinds[histSnapshot], kinds[histDeleted])
			for _, k := range []byte{histDoc, histPatch, histSnapshot, histDeleted} {
				if kinds[k] == 0 {
					t.Errorf("the stream produced no history entry of kind %q; the test would not cover it", k)
				}
			}
			// Every version of every document reads back as the engine wrote it.
			checkAllVersions(t, w)

			if err := w.store.Rebuild(context.Background()); err != nil {
				t.Fatal(err)
			}
			if d := compareDumps(live, dumpProjection(t, w.db, 9)); d != "" {
				t.Fatalf("rebuilt projection differs from the live one:\n%s", d)
			}
			if d := compareDumps(otherBefore, dumpProjection(t, w.db, 10)); d != "" {
				t.Fatalf("rebuilding dataset 9 changed dataset 10:\n%s", d)
			}
		})
	}
}

// checkAllVersions replays the log and checks that AtSeq and AtRev return
// each document exactly as each event left it.
func checkAllVersions(t *testing.T, w *world) {
	t.Helper()
	state := map[string][]byte{}
	err := w.log.Scan(context.Background(), 1, func(ev *eventlog.Event) error {
		for _, ef := range ev.Effects {
			switch {
			case ef.Operation == eventlog.OpDelete:
				delete(state, ef.DocID)
			case ef.Doc != nil:
				state[ef.DocID] = append([]byte(nil), ef.Doc...)
			default:
				prev := state[ef.DocID]
				doc, err := applyDiff(prev, ef.Diff)
				if err != nil {
					return err
				}
				state[ef.DocID] = doc
			}
			got, ok, err := w.store.AtRev(ef.DocID, ev.TxID)
			if err != nil {
				return err
			}
			want, exists := state[ef.DocID]
			if ok != exists || string(got) != string(want) {
				return fmt.Errorf("AtRev(%s, %s) = %s, %v; want %s, %v", ef.DocID, ev.TxID, got, ok, want, exists)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The current documents equal what the engine holds.
	for id, doc := range w.docs {
		got, ok, err := w.store.Get(id, Raw)
		want, _ := json.Marshal(doc)
		if err != nil || !ok || string(got) != string(want) {
			t.Fatalf("Get(%s) = %s, %v, %v; want %s", id, got, ok, err, want)
		}
		if string(state[id]) != string(want) {
			t.Fatalf("replayed %s = %s, want %s", id, state[id], want)
		}
	}
}

// TestRebuildResumesAfterCrash leaves the rebuild marker set with a
// half-dropped projection, as a crash during Rebuild would, and checks that
// Open finishes the rebuild.
func TestRebuildResumesAfterCrash(t *testing.T) {
	fs := vfs.NewMem()
	db, err := eventlog.Open("db", &eventlog.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	w := attachWorld(t, db, 4)
	randomStream(w, rand.New(rand.NewPCG(1, 2)), 200)
	live := dumpProjection(t, db, 4)

	// What a crash after the drop and part of the replay leaves behind.
	pdb := db.Pebble()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(pdb.Set(rebuildMarkerKey(4), nil, pebble.Sync))
	must(pdb.DeleteRange(eventlog.KeyPrefix(4, eventlog.SpaceDocs), eventlog.KeyUpperBound(4, eventlog.SpaceDocs), pebble.Sync))
	must(pdb.Set(w.store.docKey("a"), []byte("half-written"), pebble.Sync))
	must(db.Close())

	db, err = eventlog.Open("db", &eventlog.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := Open(db, 4)
	if err != nil {
		t.Fatal(err)
	}
	if pending, err := rebuildPending(db.Pebble(), 4); err != nil || pending {
		t.Fatalf("marker still set after Open: %v, %v", pending, err)
	}
	if d := compareDumps(live, dumpProjection(t, db, 4)); d != "" {
		t.Fatalf("projection after the resumed rebuild differs:\n%s", d)
	}
	if _, ok, err := s.Get("a", Raw); err != nil || ok != (w.docs["a"] != nil) {
		t.Fatalf("Get(a) after resume: %v, %v", ok, err)
	}
}
