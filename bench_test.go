package vellum

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/eventlog"
)

const benchWriters = 64

// BenchmarkDurableThroughput measures single-mutation transactions per second
// from 64 concurrent writers, each answered only after its sync, next to raw
// Pebble: 64 concurrent committers of synced batches of the same size, on a
// store opened with the same options, in the same run.
func BenchmarkDurableThroughput(b *testing.B) {
	e := newTestEngine(b, "bench")
	d, _ := e.dataset("bench")
	pad := strings.Repeat("x", 60)
	start := time.Now()
	runConcurrently(b.N, func(i int) error {
		body := fmt.Sprintf(`{"mutations":[{"create":{"_id":"doc-%d","_type":"bench","title":%q,"n":%d}}]}`, i, pad, i)
		_, err := e.Transact(context.Background(), "bench", SystemPrincipal, []byte(body))
		return err
	}, b)
	elapsed := time.Since(start)
	b.StopTimer()
	txPerSec := float64(b.N) / elapsed.Seconds()
	avgBatch := int(d.w.batchBytes.Load() / uint64(max(b.N, 1)))

	raw := rawPebbleSyncedCommits(b, b.N, avgBatch)
	b.ReportMetric(txPerSec, "tx/s")
	b.ReportMetric(raw, "raw-commits/s")
	b.ReportMetric(txPerSec/raw, "ratio")
	b.Logf("durable transactions: %.0f tx/s; raw Pebble Commit(Sync) of %d-byte batches: %.0f commits/s; ratio %.2f (n=%d, %d writers)",
		txPerSec, avgBatch, raw, txPerSec/raw, b.N, benchWriters)
}

// rawPebbleSyncedCommits commits n synced batches of about size bytes from 64
// goroutines to a fresh store opened like the engine's, and returns commits/s.
func rawPebbleSyncedCommits(b *testing.B, n, size int) float64 {
	db, err := eventlog.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	p := db.Pebble()
	value := []byte(strings.Repeat("v", max(size-24, 1)))
	start := time.Now()
	runConcurrently(n, func(i int) error {
		batch := p.NewBatch()
		batch.Set(fmt.Appendf(nil, "raw/%016d", i), value, nil)
		return p.Apply(batch, pebble.Sync)
	}, b)
	return float64(n) / time.Since(start).Seconds()
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
