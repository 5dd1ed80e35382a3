package projection

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestScanPrefixAtAndHistorySeqs(t *testing.T) {
	w := newWorld(t, 5)
	g := func(name string, n float64) change {
		return change{id: "_.groups." + name, doc: map[string]any{"_type": "system.group", "n": n}}
	}
	w.commit(g("a", 1), change{id: "post", doc: map[string]any{"_type": "post"}}) // 1
	w.commit(g("ab", 1))                                                          // 2
	w.commit(g("a", 2))                                                           // 3
	w.commit(change{id: "_.groups.ab"})                                           // 4: deleted
	w.commit(g("b", 1), g("a", 3))                                                // 5

	scan := func(seq uint64) string {
		var out []string
		err := w.store.ScanPrefixAt("_.groups.", seq, func(id string, doc []byte) error {
			var d struct{ N float64 }
			if err := json.Unmarshal(doc, &d); err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s:%g", strings.TrimPrefix(id, "_.groups."), d.N))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, " ")
	}
	for _, tt := range []struct {
		seq  uint64
		want string
	}{
		{0, ""}, {1, "a:1"}, {2, "a:1 ab:1"}, {3, "a:2 ab:1"}, {4, "a:2"}, {5, "a:3 b:1"}, {99, "a:3 b:1"},
	} {
		if got := scan(tt.seq); got != tt.want {
			t.Errorf("groups after event %d: %q, want %q", tt.seq, got, tt.want)
		}
	}
	for _, tt := range []struct {
		id       string
		from, to uint64
		want     []uint64
	}{
		{"_.groups.a", 1, 5, []uint64{1, 3, 5}},
		{"_.groups.a", 2, 4, []uint64{3}},
		{"_.groups.a", 0, ^uint64(0), []uint64{1, 3, 5}},
		{"_.groups.ab", 1, 5, []uint64{2, 4}},
		{"_.groups", 1, 5, nil}, // a prefix of ids is not an id
		{"post", 2, 5, nil},
		{"post", 4, 2, nil},
	} {
		got, err := w.store.HistorySeqs(tt.id, tt.from, tt.to)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("HistorySeqs(%q, %d, %d) = %v, %v; want %v", tt.id, tt.from, tt.to, got, err, tt.want)
		}
	}
}
