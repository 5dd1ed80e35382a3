package projection

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestScanAt checks ScanAt against the documents the test itself tracked
// after every event: creates, whole and diff updates of small and large
// documents, deletions and re-creations, several documents per event, for
// every point of the log, from the start and from every id (paging).
func TestScanAt(t *testing.T) {
	w := newWorld(t, 7)
	r := rand.New(rand.NewPCG(1, 2))
	ids := []string{"a", "a.b", "b", "drafts.a", "drafts.b", "c", "versions.r1.c", "z"}
	snapshots := []map[string]string{{}} // seq → id → JSON
	for range 60 {
		var changes []change
		used := map[string]bool{}
		for range 1 + r.IntN(3) {
			id := ids[r.IntN(len(ids))]
			if used[id] {
				continue
			}
			used[id] = true
			_, exists := w.docs[id]
			switch {
			case exists && r.IntN(4) == 0:
				changes = append(changes, change{id: id})
			default:
				doc := map[string]any{"_type": "post", "n": float64(r.IntN(1000))}
				if r.IntN(2) == 0 {
					doc["body"] = strings.Repeat("lorem ipsum ", 200) // large: diffs pay off
				}
				changes = append(changes, change{id: id, doc: doc, diff: exists && r.IntN(2) == 0})
			}
		}
		w.commit(changes...)
		snap := map[string]string{}
		for id, doc := range w.docs {
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			snap[id] = string(b)
		}
		snapshots = append(snapshots, snap)
	}
	scan := func(seq uint64, after string) ([]string, map[string]string) {
		var order []string
		got := map[string]string{}
		err := w.store.ScanAt(seq, after, func(id string, doc []byte) error {
			order = append(order, id)
			got[id] = string(doc)
			return nil
		})
		if err != nil {
			t.Fatalf("ScanAt(%d, %q): %v", seq, after, err)
		}
		return order, got
	}
	for seq, want := range snapshots {
		order, got := scan(uint64(seq), "")
		if !slices.IsSorted(order) {
			t.Errorf("seq %d: ids not in order: %v", seq, order)
		}
		if !maps.Equal(got, want) {
			t.Errorf("seq %d:\n got %v\nwant %v", seq, keys(got), keys(want))
			for id, doc := range want {
				if got[id] != doc {
					t.Errorf("seq %d, %s:\n got %.80s\nwant %.80s", seq, id, got[id], doc)
				}
			}
		}
		for _, after := range ids {
			_, page := scan(uint64(seq), after)
			wantPage := maps.Clone(want)
			maps.DeleteFunc(wantPage, func(id, _ string) bool { return id <= after })
			if !maps.Equal(page, wantPage) {
				t.Errorf("seq %d after %q: got %v, want %v", seq, after, keys(page), keys(wantPage))
			}
		}
	}
	// A point beyond the head is the head.
	if _, got := scan(1<<62, ""); !maps.Equal(got, snapshots[len(snapshots)-1]) {
		t.Errorf("beyond the head: got %v", keys(got))
	}
	// fn's error stops the scan and is returned, on both paths.
	for _, seq := range []uint64{3, uint64(len(snapshots) - 1)} {
		stop := fmt.Errorf("stop")
		n := 0
		err := w.store.ScanAt(seq, "", func(string, []byte) error { n++; return stop })
		if err != stop || n != 1 {
			t.Errorf("seq %d: ScanAt returned %v after %d calls, want the callback's error after 1", seq, err, n)
		}
	}
}

func keys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
