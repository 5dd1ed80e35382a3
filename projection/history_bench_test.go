package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
)

// bigDoc returns a document of at least size bytes (as JSON): random
// 64-letter text fields f0000, f0001, ... (75 bytes each with the name), so
// that compression does not flatter the figures.
func bigDoc(size int) map[string]any {
	rng := rand.New(rand.NewPCG(5, 6))
	doc := map[string]any{"_type": "article"}
	for i := 0; i*75 < size; i++ {
		doc[fmt.Sprintf("f%04d", i)] = randomText(rng, 64)
	}
	return doc
}

func randomText(rng *rand.Rand, n int) string {
	var sb strings.Builder
	for range n {
		sb.WriteByte(byte('a' + rng.IntN(26)))
	}
	return sb.String()
}

// smallEdit returns doc with one field changed by a ~100-byte patch (the
// kind of edit a `set` of one short text produces): field f<k> gets a new
// 64-character text.
func smallEdit(rng *rand.Rand, doc map[string]any) map[string]any {
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		if !strings.HasPrefix(k, "_") || k == "_type" {
			out[k] = v
		}
	}
	out[fmt.Sprintf("f%04d", rng.IntN(len(doc)-1))] = randomText(rng, 64)
	return out
}

// editHistory creates a document of docSize bytes and edits it revisions
// times, one event (one batch, as the engine commits) per edit, each logged
// as a diff.
func editHistory(tb testing.TB, w *world, docSize, revisions int) {
	rng := rand.New(rand.NewPCG(1, 2))
	doc := bigDoc(docSize)
	w.commit(change{id: "big", doc: doc})
	for range revisions {
		doc = smallEdit(rng, doc)
		w.commit(change{id: "big", doc: doc, diff: true})
	}
}

func dirSize(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed by a compaction meanwhile
		}
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// keyspaceBytes returns the logical size (keys and values) of a keyspace.
func keyspaceBytes(tb testing.TB, db *eventlog.DB, dataset uint32, space byte) (n int64, keys int) {
	it, err := db.Pebble().NewIter(&pebble.IterOptions{
		LowerBound: eventlog.KeyPrefix(dataset, space), UpperBound: eventlog.KeyUpperBound(dataset, space)})
	if err != nil {
		tb.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		n += int64(len(it.Key()) + len(it.Value()))
		keys++
	}
	return n, keys
}

// BenchmarkLogSize measures the storage cost of 1,000 small (~100-byte)
// patches to one 100 KB document: the event keyspace's logical bytes and
// on-disk bytes per event, and the growth of the whole store (events, both
// indexes, current document, history entries and snapshots) per event,
// after a flush and full compaction. The raw baseline is the size of the
// mutation a client would send for each edit.
func BenchmarkLogSize(b *testing.B) {
	for _, maxRevs := range []int{64, 128, 256} {
		b.Run(fmt.Sprintf("snapshot-every-%d", maxRevs), func(b *testing.B) { benchLogSize(b, maxRevs) })
	}
}

func benchLogSize(b *testing.B, maxRevs int) {
	const events = 1000
	for range b.N {
		dir := b.TempDir()
		db, err := eventlog.Open(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		w := attachWorld(b, db, 1)
		w.store.policy = SnapshotPolicy{MaxRevisions: maxRevs}
		compactAll := func() {
			if err := db.Pebble().Flush(); err != nil {
				b.Fatal(err)
			}
			if err := db.Pebble().Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
				b.Fatal(err)
			}
		}
		rng := rand.New(rand.NewPCG(1, 2))
		doc := bigDoc(100 << 10)
		w.commit(change{id: "big", doc: doc})
		compactAll()
		eventsBefore, _ := keyspaceBytes(b, db, 1, eventlog.SpaceEvents)
		diskBefore, err := db.Pebble().EstimateDiskUsage([]byte{0}, []byte{0xff})
		if err != nil {
			b.Fatal(err)
		}
		evDiskBefore, _ := db.Pebble().EstimateDiskUsage(eventlog.KeyPrefix(1, eventlog.SpaceEvents), eventlog.KeyUpperBound(1, eventlog.SpaceEvents))
		var diffBytes int
		for range events {
			doc = smallEdit(rng, doc)
			w.commit(change{id: "big", doc: doc, diff: true})
			ev, err := w.log.Get(w.seq)
			if err != nil {
				b.Fatal(err)
			}
			diffBytes += len(ev.Effects[0].Diff)
		}
		compactAll()
		eventsAfter, n := keyspaceBytes(b, db, 1, eventlog.SpaceEvents)
		diskAfter, _ := db.Pebble().EstimateDiskUsage([]byte{0}, []byte{0xff})
		evDiskAfter, _ := db.Pebble().EstimateDiskUsage(eventlog.KeyPrefix(1, eventlog.SpaceEvents), eventlog.KeyUpperBound(1, eventlog.SpaceEvents))
		hist, _ := keyspaceBytes(b, db, 1, eventlog.SpaceHistory)
		if n != events+1 {
			b.Fatalf("%d events in the log, want %d", n, events+1)
		}
		b.ReportMetric(float64(diffBytes)/events, "diff-B/event")
		b.ReportMetric(float64(eventsAfter-eventsBefore)/events, "log-B/event")
		b.ReportMetric(float64(evDiskAfter-evDiskBefore)/events, "log-disk-B/event")
		b.ReportMetric(float64(diskAfter-diskBefore)/events, "store-disk-B/event")
		b.ReportMetric(float64(hist)/events, "history-B/event")
		b.ReportMetric(float64(len(`{"mutations":[{"patch":{"id":"big","set":{"f0000":"`)+64+len(`"}}}]}`)), "raw-mutation-B")
		b.Logf("store directory: %d bytes (with WAL and manifest)", dirSize(b, dir))
		db.Close()
	}
}

// BenchmarkHistoryAtTime reads a document with 10,000 revisions (a 100 KB
// document edited by small diffs, the worst case for reconstruction) at
// random times, next to a raw Pebble Get of its current version.
func BenchmarkHistoryAtTime(b *testing.B) {
	for _, maxRevs := range []int{64, 128, 256} {
		b.Run(fmt.Sprintf("snapshot-every-%d", maxRevs), func(b *testing.B) {
			db, err := eventlog.Open(b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			w := attachWorld(b, db, 1)
			w.store.policy = SnapshotPolicy{MaxRevisions: maxRevs}
			const revisions = 10_000
			editHistory(b, w, 100<<10, revisions)
			if err := db.Pebble().Flush(); err != nil {
				b.Fatal(err)
			}
			if err := db.Pebble().Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			key := w.store.docKey("big")

			// Raw baseline: a Get of the current version.
			const rawN = 2000
			start := time.Now()
			for range rawN {
				v, closer, err := db.Pebble().Get(key)
				if err != nil || len(v) < 100<<10 {
					b.Fatal(err)
				}
				closer.Close()
			}
			raw := time.Since(start) / rawN

			b.ResetTimer()
			durations := make([]time.Duration, 0, b.N)
			for range b.N {
				at := t0.Add(time.Duration(rng.IntN(revisions+1)) * time.Second)
				s := time.Now()
				doc, ok, err := w.store.AtTime("big", at)
				durations = append(durations, time.Since(s))
				if err != nil || !ok || len(doc) < 100<<10 {
					b.Fatalf("AtTime(%v) = %d bytes, %v, %v", at, len(doc), ok, err)
				}
			}
			b.StopTimer()
			per := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(per.Microseconds())/1000, "ms/AtTime")
			slices.Sort(durations)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(ms(durations[len(durations)/2]), "p50-ms")
			b.ReportMetric(ms(durations[len(durations)*99/100]), "p99-ms")
			b.ReportMetric(float64(raw.Microseconds())/1000, "raw-get-ms")
			b.ReportMetric(float64(per)/float64(raw), "ratio")
		})
	}
}

// TestHistoryAtTimeMatches checks the reconstruction the benchmark times:
// every version of a document edited 600 times by diffs (over several
// snapshots) reads back exactly.
func TestHistoryAtTimeMatches(t *testing.T) {
	w := newWorld(t, 1)
	w.store.policy = SnapshotPolicy{MaxRevisions: 50}
	rng := rand.New(rand.NewPCG(1, 2))
	doc := bigDoc(8 << 10)
	versions := map[uint64][]byte{}
	seq := w.commit(change{id: "big", doc: doc})
	versions[seq], _ = json.Marshal(w.docs["big"])
	for range 600 {
		doc = smallEdit(rng, doc)
		seq = w.commit(change{id: "big", doc: doc, diff: true})
		versions[seq], _ = json.Marshal(w.docs["big"])
	}
	_, snapshots := countHistory(t, w, "big")
	if snapshots < 600/50 {
		t.Fatalf("%d snapshots for 600 diffs with MaxRevisions 50", snapshots)
	}
	for seq, want := range versions {
		got, ok, err := w.store.AtTime("big", t0.Add(time.Duration(seq-1)*time.Second+time.Millisecond))
		if err != nil || !ok || string(got) != string(want) {
			t.Fatalf("version of event %d: ok=%v err=%v, equal=%v", seq, ok, err, string(got) == string(want))
		}
	}
}

// countHistory returns the number of history entries of id and how many
// are snapshots.
func countHistory(t testing.TB, w *world, id string) (entries, snapshots int) {
	lower := w.store.historyPrefix(id)
	it, err := w.db.Pebble().NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: append(lower[:len(lower)-1:len(lower)-1], 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		entries++
		if it.Value()[0] == histSnapshot {
			snapshots++
		}
	}
	return entries, snapshots
}
