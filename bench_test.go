package vellum

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/eventlog"
	"github.com/vellum-db/vellum/projection/mutation"
)

const benchWriters = 64

// BenchmarkDurableThroughput measures single-mutation transactions per second
// from 64 concurrent writers, each answered only after its sync, next to raw
// Pebble: 64 concurrent committers of synced batches of the same size, on a
// store opened with the same options, in the same run. The two alternate in
// four rounds, so that a change in what else the machine runs weighs on
// both alike; each also reports the process's CPU time per operation, which
// depends far less on that than throughput does.
func BenchmarkDurableThroughput(b *testing.B) {
	e := newTestEngine(b, "bench")
	d, _ := e.dataset("bench")
	rawDB, err := eventlog.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer rawDB.Close()
	pad := strings.Repeat("x", 60)
	rounds := 1
	if b.N >= 4*benchWriters {
		rounds = 4
	}
	var txTime, rawTime, txCPU, rawCPU time.Duration
	avgBatch, done := 0, 0
	for r := range rounds {
		lo, n := done, b.N*(r+1)/rounds-done
		start, cpu := time.Now(), processCPU()
		runConcurrently(n, func(i int) error {
			body := fmt.Sprintf(`{"mutations":[{"create":{"_id":"doc-%d","_type":"bench","title":%q,"n":%d}}]}`, lo+i, pad, lo+i)
			_, err := e.Transact(context.Background(), "bench", SystemPrincipal, []byte(body))
			return err
		}, b)
		txTime, txCPU = txTime+time.Since(start), txCPU+processCPU()-cpu
		done += n
		avgBatch = int(d.w.batchBytes.Load() / uint64(done))

		start, cpu = time.Now(), processCPU()
		rawSyncedCommits(b, rawDB.Pebble(), lo, n, avgBatch)
		rawTime, rawCPU = rawTime+time.Since(start), rawCPU+processCPU()-cpu
	}
	b.StopTimer()
	txPerSec := float64(b.N) / txTime.Seconds()
	raw := float64(b.N) / rawTime.Seconds()
	b.ReportMetric(txPerSec, "tx/s")
	b.ReportMetric(raw, "raw-commits/s")
	b.ReportMetric(txPerSec/raw, "ratio")
	perTx := float64(txCPU.Microseconds()) / float64(b.N)
	perRaw := float64(rawCPU.Microseconds()) / float64(b.N)
	b.ReportMetric(perTx, "cpu-µs/tx")
	b.ReportMetric(perRaw, "raw-cpu-µs/commit")
	b.Logf("durable transactions: %.0f tx/s; raw Pebble Commit(Sync) of %d-byte batches: %.0f commits/s; ratio %.2f; process CPU %.1f µs/tx, raw %.1f µs/commit (n=%d, %d writers, %d rounds)",
		txPerSec, avgBatch, raw, txPerSec/raw, perTx, perRaw, b.N, benchWriters, rounds)
}

// processCPU returns the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawSyncedCommits commits n synced batches of about size bytes (keys from
// lo on) from 64 goroutines to p.
func rawSyncedCommits(b *testing.B, p *pebble.DB, lo, n, size int) {
	value := []byte(strings.Repeat("v", max(size-24, 1)))
	runConcurrently(n, func(i int) error {
		batch := p.NewBatch()
		batch.Set(fmt.Appendf(nil, "raw/%016d", lo+i), value, nil)
		return p.Apply(batch, pebble.Sync)
	}, b)
}

// runConcurrently runs fn(0..n-1) from benchWriters goroutines.
func runConcurrently(n int, fn func(i int) error, b *testing.B) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := 0; w < benchWriters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		b.Fatal(err)
	}
}

// BenchmarkAuthorizedThroughput measures durable single-mutation
// transactions per second of an end user whose write is decided among 20
// groups holding 50 grants (30 of them GROQ filters, the matching one last),
// next to the same workload with authorization switched off, in the same
// run.
func BenchmarkAuthorizedThroughput(b *testing.B) {
	run := func(off bool) float64 {
		e := newTestEngine(b, "bench")
		e.authzOff = off
		var muts []string
		grant := 0
		for g := 0; g < 20; g++ {
			var grants []string
			for k := 0; k < 3 && grant < 50; k++ {
				if grant < 30 {
					// Filters that do not match a "post", except the last one.
					filter := fmt.Sprintf(`_type == "kind%d" && author == identity()`, grant)
					if grant == 29 {
						filter = `_type == "post" && author == identity()`
					}
					grants = append(grants, fmt.Sprintf(`{"filter":%q,"permissions":["read","create","update"]}`, filter))
				} else {
					grants = append(grants, fmt.Sprintf(`{"path":"area%d.**","permissions":["read","create"]}`, grant))
				}
				grant++
			}
			muts = append(muts, fmt.Sprintf(`{"create":{"_id":"_.groups.g%d","_type":"system.group","members":["authenticated"],"grants":[%s]}}`, g, strings.Join(grants, ",")))
		}
		mustTransact(b, e, "bench", `{"mutations":[`+strings.Join(muts, ",")+`]}`)
		alice := &authz.Principal{ID: "alice", Authenticated: true}
		pad := strings.Repeat("x", 60)
		start := time.Now()
		runConcurrently(b.N, func(i int) error {
			body := fmt.Sprintf(`{"mutations":[{"create":{"_id":"post-%d","_type":"post","author":"alice","title":%q}}]}`, i, pad)
			_, err := e.Transact(context.Background(), "bench", alice, []byte(body))
			return err
		}, b)
		return float64(b.N) / time.Since(start).Seconds()
	}
	off := run(true)
	on := run(false)
	b.ReportMetric(on, "tx/s")
	b.ReportMetric(off, "unauthorized-tx/s")
	b.ReportMetric(on/off, "ratio")
	b.Logf("authorized: %.0f tx/s; authorization off: %.0f tx/s; ratio %.2f (n=%d, 20 groups, 50 grants, 30 filters)", on, off, on/off, b.N)
}

// TestSubmittedMutations checks that the event records the mutations as
// json.Compact writes them, whether or not the fast path for text without
// whitespace outside strings is taken.
func TestSubmittedMutations(t *testing.T) {
	for _, body := range []string{
		`{"mutations":[{"create":{"_id":"a","_type":"t","title":"no spaces"}}]}`,
		`{"mutations":[ {"create": {"_id":"a","_type":"t"}} ]}`,
		"{\"mutations\":[{\"create\":{\"_id\":\"a\",\n\t\"_type\":\"t\"}}]}",
		`{"mutations":[{"create":{"_id":"a","_type":"t","q":"say \"hi there\" \\ ok","n":[1, 2]}}]}`,
		`{"mutations":[{"delete":{"id":"a"}},{"patch":{"id":"b","set":{"title":"a b"}}}]}`,
	} {
		tx, err := mutation.DecodeTransaction([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		got, err := submittedMutations(tx)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		var want bytes.Buffer
		want.WriteByte('[')
		for i, m := range tx.Mutations {
			if i > 0 {
				want.WriteByte(',')
			}
			if err := json.Compact(&want, m.Raw); err != nil {
				t.Fatal(err)
			}
		}
		want.WriteByte(']')
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s:\n got %s\nwant %s", body, got, want.Bytes())
		}
	}
}
