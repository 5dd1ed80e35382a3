package projection

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
	"github.com/vellum-db/vellum/projection/jsondiff"
)

// benchEvents is the size of the log BenchmarkRebuild replays;
// VELLUM_BENCH_EVENTS overrides it (e.g. for a quick run).
func benchEvents(b *testing.B) int {
	if s := os.Getenv("VELLUM_BENCH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 1_000_000
}

// writeSyntheticLog appends n events to dataset's log directly (no
// projection), in large unsynced batches, and syncs at the end. Event i
// writes document doc-(i mod docs): a create the first time, then a full
// replacement, or (every diffEvery-th event, if diffEvery > 0) a jsondiff
// patch changing one number. Documents are ~200 bytes, as the engine logs
// small documents whole.
func writeSyntheticLog(tb testing.TB, db *eventlog.DB, dataset uint32, n, docs, diffEvery int) {
	tb.Helper()
	l := db.Log(dataset)
	var prevHash [32]byte
	b := db.Pebble().NewBatchWithSize(20<<20, pebble.WithMaxRetainedSizeBytes(64<<20))
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	counts := make([]int, docs)
	current := make([]map[string]any, docs) // kept only when diffs are logged
	for i := 1; i <= n; i++ {
		d := i % docs
		id := "doc-" + strconv.Itoa(d)
		tx := fmt.Sprintf("01JD%022d", i)
		ef := eventlog.Effect{DocID: id, Operation: eventlog.OpUpdate, NewRev: tx,
			Grant: eventlog.GrantRef{Group: "_.groups.administrator"}}
		if counts[d] == 0 {
			ef.Operation = eventlog.OpCreate
		}
		counts[d]++
		doc := []byte(`{"_createdAt":"2026-01-01T00:00:00Z","_id":"` + id + `","_rev":"` + tx +
			`","_type":"post","_updatedAt":"2026-01-01T00:00:00Z","n":` + strconv.Itoa(counts[d]) +
			`,"title":"a synthetic document of about two hundred bytes"}`)
		if diffEvery > 0 {
			var after map[string]any
			if err := json.Unmarshal(doc, &after); err != nil {
				tb.Fatal(err)
			}
			if current[d] != nil && i%diffEvery == 0 {
				ef.Diff, _ = json.Marshal(jsondiff.Diff(current[d], after))
			}
			current[d] = after
		}
		if ef.Diff == nil {
			ef.Doc = doc
		}
		ev := &eventlog.Event{Seq: uint64(i), TxID: tx, Time: ts.Add(time.Duration(i) * time.Millisecond),
			Identity: "bench", PrevHash: prevHash,
			Mutations: json.RawMessage(`[{"patch":{"id":"` + id + `","inc":{"n":1}}}]`),
			Effects:   []eventlog.Effect{ef}}
		if err := l.Append(b, ev); err != nil {
			tb.Fatal(err)
		}
		prevHash = ev.Hash
		if b.Len() > 16<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				tb.Fatal(err)
			}
			b.Reset()
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		tb.Fatal(err)
	}
	b.Close()
	// Settle the LSM as a log written over time would be: flushed and
	// compacted, with no compaction debt left for the measurement to pay.
	if err := db.Pebble().Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := db.Pebble().Compact(context.Background(), eventlog.KeyPrefix(dataset, 0), eventlog.KeyPrefix(dataset+1, 0), true); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkRebuild replays a log of benchEvents events into empty
// projections, next to a raw Pebble baseline that scans the same events
// and writes the same number of keys (each event's bytes under a document
// key and a small history key) in batches of the same size.
func BenchmarkRebuild(b *testing.B) {
	for _, tt := range []struct {
		name      string
		diffEvery int
	}{
		{"full-docs", 0},
		{"quarter-diffs", 4},
	} {
		b.Run(tt.name, func(b *testing.B) {
			n := benchEvents(b)
			db, err := eventlog.Open(b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			start := time.Now()
			writeSyntheticLog(b, db, 1, n, 10_000, tt.diffEvery)
			b.Logf("wrote %d events in %v", n, time.Since(start))
			s, err := Open(db, 1)
			if err != nil {
				b.Fatal(err)
			}

			cpu := processCPU()
			raw := rawReplay(b, db, 1)
			rawCPU := processCPU() - cpu
			b.ResetTimer()
			cpu = processCPU()
			for range b.N {
				if err := s.Rebuild(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			rebuildCPU := processCPU() - cpu
			perSec := float64(n) * float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(perSec, "events/s")
			b.ReportMetric(raw, "raw-events/s")
			b.ReportMetric(perSec/raw, "ratio")
			// CPU time per event depends far less on what else the
			// machine runs than the rate does.
			b.ReportMetric(float64(rebuildCPU.Nanoseconds())/float64(n*b.N), "cpu-ns/event")
			b.ReportMetric(float64(rawCPU.Nanoseconds())/float64(n), "raw-cpu-ns/event")
		})
	}
}

// processCPU returns the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawReplay is the baseline of BenchmarkRebuild: events/s of scanning the
// log and writing two keys per event with plain Pebble, in 8 MiB unsynced
// batches, into a scratch keyspace (dropped afterwards).
func rawReplay(b *testing.B, db *eventlog.DB, dataset uint32) float64 {
	pdb := db.Pebble()
	scratch := eventlog.KeyPrefix(dataset+1000, eventlog.SpaceDocs)
	start := time.Now()
	it, err := pdb.NewIter(&pebble.IterOptions{
		LowerBound: eventlog.KeyPrefix(dataset, eventlog.SpaceEvents),
		UpperBound: eventlog.KeyUpperBound(dataset, eventlog.SpaceEvents),
	})
	if err != nil {
		b.Fatal(err)
	}
	batch := pdb.NewBatch()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		batch.Set(append(scratch[:5:5], k[5:]...), it.Value(), nil)
		batch.Set(append(append(scratch[:5:5], 'h'), k[5:]...), []byte{'c', 0}, nil)
		n++
		if batch.Len() >= defaultRebuildBatch {
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
	}
	it.Close()
	if err := batch.Commit(pebble.Sync); err != nil {
		b.Fatal(err)
	}
	batch.Close()
	perSec := float64(n) / time.Since(start).Seconds()
	if err := pdb.DeleteRange(scratch[:4], eventlog.KeyPrefix(dataset+1001, 0)[:4], pebble.Sync); err != nil {
		b.Fatal(err)
	}
	// Settle the store again, so that the measurement that follows does
	// not pay for compacting the baseline's writes away.
	if err := pdb.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := pdb.Compact(context.Background(), scratch[:4], eventlog.KeyPrefix(dataset+1001, 0)[:4], true); err != nil {
		b.Fatal(err)
	}
	return perSec
}
