package vellum

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/eventlog"
)

// Benchmarks of replay and export (issue 6: replay ≥ 250,000 events/s,
// export of 1,000,000 documents ≥ 100,000 documents/s). Each prints, from
// the same run, a raw Pebble baseline doing the storage work alone on the
// same data, and the ratio. Sizes can be changed with VELLUM_BENCH_EVENTS
// and VELLUM_BENCH_DOCS.

func benchSize(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// syntheticEvents returns n encoded, hash-chained events as the engine
// writes them: each event writes perEvent documents (whole documents of
// about 200 bytes), ids cycling over distinct documents, so later events
// update earlier documents.
func syntheticEvents(tb testing.TB, n, perEvent, distinct int) [][]byte {
	tb.Helper()
	out := make([][]byte, 0, n)
	var prev [32]byte
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	doc := 0
	for seq := 1; seq <= n; seq++ {
		txid := fmt.Sprintf("01JDBENCH%017d", seq)
		at := t0.Add(time.Duration(seq) * time.Millisecond)
		ev := &eventlog.Event{Seq: uint64(seq), TxID: txid, Time: at, Identity: "token-bench", PrevHash: prev,
			Mutations: json.RawMessage(`[{"createOrReplace":{"_id":"…","_type":"post"}}]`)}
		for range perEvent {
			id := fmt.Sprintf("doc-%07d", doc%distinct)
			op := eventlog.OpCreate
			if doc >= distinct {
				op = eventlog.OpUpdate
			}
			body, _ := json.Marshal(map[string]any{
				"_id": id, "_type": "post", "_rev": txid, "_createdAt": "2026-11-23T08:00:00Z", "_updatedAt": at.Format(time.RFC3339),
				"n": float64(doc), "title": "A title of a typical length for a post", "tags": []any{"news", "go"},
			})
			ev.Effects = append(ev.Effects, eventlog.Effect{DocID: id, Operation: op, NewRev: txid, Doc: body,
				Grant: eventlog.GrantRef{Group: "_.groups.administrator"}})
			doc++
		}
		raw, err := eventlog.Encode(ev)
		if err != nil {
			tb.Fatal(err)
		}
		prev = ev.Hash
		out = append(out, raw)
	}
	return out
}

// cpuTime returns the CPU time (user and system) this process has used:
// on a shared, loaded machine, the rate per CPU-second is steadier than the
// rate per wall-clock second, so the benchmarks print both.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage returns the machine's 1-minute load average as the
// benchmarks' logs quote it ("?" where /proc/loadavg is not readable).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func sliceSource(events [][]byte) EventSource {
	return func(ctx context.Context, emit func([]byte) error) error {
		for _, raw := range events {
			if err := emit(raw); err != nil {
				return err
			}
		}
		return nil
	}
}

// rawPebbleWrite writes each event under its key into a new Pebble store
// in dir, in batches of the size Replay uses, synced at the end: the
// storage work of writing the log alone, with no decoding, hashing, index
// or projection.
func rawPebbleWrite(tb testing.TB, dir string, events [][]byte) time.Duration {
	tb.Helper()
	db, err := eventlog.Open(dir, &eventlog.Options{MemTableSize: 64 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	b := db.Pebble().NewBatch()
	for i, raw := range events {
		b.Set(eventlog.EventKey(1, uint64(i+1)), raw, nil)
		if b.Len() >= replayBatchBytes {
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
	return time.Since(start)
}

// BenchmarkReplay measures Replay: decoding and verifying each event,
// storing it (event, transaction-id and time index) and building the
// projections (current documents and history index) in the same pass, then
// the check of the copy's head. Events come from memory, so the figure is the
// replay's own. One op is one whole replay.
func BenchmarkReplay(b *testing.B) {
	n := benchSize("VELLUM_BENCH_EVENTS", 300_000)
	events := syntheticEvents(b, n, 1, 50_000)
	var bytesTotal int
	for _, e := range events {
		bytesTotal += len(e)
	}
	b.Logf("%d events, %.0f bytes each on average", n, float64(bytesTotal)/float64(n))
	b.ResetTimer()
	var replay, raw, replayCPU, rawCPU time.Duration
	for i := range b.N {
		dir := filepath.Join(b.TempDir(), "copy"+strconv.Itoa(i))
		start, cpu := time.Now(), cpuTime()
		res, err := Replay(context.Background(), dir, "bench", "private", sliceSource(events), ReplayOptions{})
		if err != nil {
			b.Fatal(err)
		}
		replay += time.Since(start)
		replayCPU += cpuTime() - cpu
		if res.Events != uint64(n) {
			b.Fatalf("replayed %d events", res.Events)
		}
		b.StopTimer()
		cpu = cpuTime()
		raw += rawPebbleWrite(b, filepath.Join(b.TempDir(), "raw"+strconv.Itoa(i)), events)
		rawCPU += cpuTime() - cpu
		b.StartTimer()
	}
	rate := float64(n*b.N) / replay.Seconds()
	rawRate := float64(n*b.N) / raw.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(float64(n*b.N)/replayCPU.Seconds(), "events/cpu-s")
	b.Logf("replay %.0f events/s (%.0f per CPU-second); raw Pebble write of the same events %.0f events/s (%.0f per CPU-second); replay/raw = %.2f (CPU: %.2f); load average %s",
		rate, float64(n*b.N)/replayCPU.Seconds(), rawRate, float64(n*b.N)/rawCPU.Seconds(), rate/rawRate, rawCPU.Seconds()/replayCPU.Seconds(), loadAverage())
}

// BenchmarkReplayTo measures the library form of `vellum replay`: the
// source engine's log read page by page (EventsPage) and replayed into a
// new store. The baseline reads the same events with a raw Pebble
// iterator and writes them raw into a new store.
func BenchmarkReplayTo(b *testing.B) {
	n := benchSize("VELLUM_BENCH_EVENTS", 300_000)
	events := syntheticEvents(b, n, 1, 50_000)
	srcDir := filepath.Join(b.TempDir(), "src")
	if _, err := Replay(context.Background(), srcDir, "bench", "private", sliceSource(events), ReplayOptions{}); err != nil {
		b.Fatal(err)
	}
	e, err := Open(filepath.Join(srcDir, "store"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	d, _ := e.dataset("bench")
	b.ResetTimer()
	var replay, raw time.Duration
	for i := range b.N {
		dir := filepath.Join(b.TempDir(), "copy"+strconv.Itoa(i))
		start := time.Now()
		res, err := e.ReplayTo(context.Background(), "bench", SystemPrincipal, Point{}, dir, ReplayOptions{})
		if err != nil {
			b.Fatal(err)
		}
		replay += time.Since(start)
		if res.Events != uint64(n) {
			b.Fatalf("replayed %d events", res.Events)
		}
		b.StopTimer()
		start = time.Now()
		read := make([][]byte, 0, n)
		it, _ := e.pebbleDB().NewIter(&pebble.IterOptions{LowerBound: eventlog.EventKey(d.num, 1), UpperBound: eventlog.KeyUpperBound(d.num, eventlog.SpaceEvents)})
		for ok := it.First(); ok; ok = it.Next() {
			read = append(read, bytes.Clone(it.Value()))
		}
		it.Close()
		raw += time.Since(start) + rawPebbleWrite(b, filepath.Join(b.TempDir(), "raw"+strconv.Itoa(i)), read)
		b.StartTimer()
	}
	rate := float64(n*b.N) / replay.Seconds()
	rawRate := float64(n*b.N) / raw.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.Logf("replay from the engine %.0f events/s; raw Pebble read + write of the same events %.0f events/s; ratio %.2f; load average %s", rate, rawRate, rate/rawRate, loadAverage())
}

// BenchmarkExport measures Export of a dataset of VELLUM_BENCH_DOCS
// documents (1,000,000 by default) at the head by an administrator (the
// case the goal is about), by everyone (read grants that are paths, decided
// by id), by a member of a group whose read grant is a GROQ filter (every
// document decoded and decided), and at a past point (through the history
// index). The
// baseline is a raw Pebble iteration of the current-documents keyspace
// that copies each value, from the same store in the same run.
func BenchmarkExport(b *testing.B) {
	docs := benchSize("VELLUM_BENCH_DOCS", 1_000_000)
	const perEvent = 100
	events := syntheticEvents(b, docs/perEvent+docs/perEvent/10, perEvent, docs) // the last tenth updates documents
	dir := filepath.Join(b.TempDir(), "src")
	start := time.Now()
	if _, err := Replay(context.Background(), dir, "bench", "public", sliceSource(events), ReplayOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Logf("fixture: %d documents in %d events, built in %s", docs, len(events), time.Since(start).Round(time.Millisecond))
	e, err := Open(filepath.Join(dir, "store"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	d, _ := e.dataset("bench")
	past := uint64(docs / perEvent) // before the updates
	// A group whose read grant is a GROQ filter: its members' exports
	// decode and decide every document.
	if _, err := e.Transact(context.Background(), "bench", SystemPrincipal, []byte(`{"mutations":[{"create":{"_id":"_.groups.posts","_type":"system.group","members":["reader"],"grants":[{"filter":"_type == 'post'","permissions":["read"]}]}}]}`)); err != nil {
		b.Fatal(err)
	}

	rawScan := func() (int, time.Duration) {
		start := time.Now()
		it, _ := e.pebbleDB().NewIter(&pebble.IterOptions{LowerBound: eventlog.KeyPrefix(d.num, eventlog.SpaceDocs), UpperBound: eventlog.KeyUpperBound(d.num, eventlog.SpaceDocs)})
		n := 0
		var sink []byte
		for ok := it.First(); ok; ok = it.Next() {
			sink = append(sink[:0], it.Value()...)
			n++
		}
		it.Close()
		return n, time.Since(start)
	}
	for _, c := range []struct {
		name string
		p    *authz.Principal
		at   Point
	}{
		{"head/admin", SystemPrincipal, Point{}},
		{"head/everyone", authz.Anonymous(), Point{}},
		{"head/filter-grant", &authz.Principal{ID: "reader", Authenticated: true}, Point{}},
		{"past/admin", SystemPrincipal, Point{Seq: past}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var took, rawTook time.Duration
			for range b.N {
				start := time.Now()
				var out int
				_, n, err := e.Export(context.Background(), "bench", c.p, ExportOptions{At: c.at}, func(doc []byte) error {
					out += len(doc) + 1
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				took += time.Since(start)
				if n != int64(docs) {
					b.Fatalf("exported %d documents, want %d", n, docs)
				}
				b.StopTimer()
				rn, rt := rawScan()
				if rn != docs+1 { // and the group document, which export leaves out
					b.Fatalf("raw scan saw %d documents", rn)
				}
				rawTook += rt
				b.StartTimer()
			}
			rate := float64(docs*b.N) / took.Seconds()
			rawRate := float64(docs*b.N) / rawTook.Seconds()
			b.ReportMetric(rate, "docs/s")
			b.ReportMetric(rawRate, "raw-docs/s")
			b.Logf("%s: export %.0f documents/s; raw Pebble scan of the documents %.0f documents/s; export/raw = %.2f", c.name, rate, rawRate, rate/rawRate)
		})
	}
}
