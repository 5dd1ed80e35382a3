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
