package projection

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
)

// BenchmarkVerify verifies a log of benchEvents events (hash chain,
// projections, time and transaction indexes) next to two baselines from
// the same run on the same store: raw, a plain Pebble iteration over every
// key Verify reads (events, time index, current documents, history index,
// transaction index), reading each value; and chain, Log.Verify alone.
func BenchmarkVerify(b *testing.B) {
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
			writeSyntheticLog(b, db, 1, n, 10_000, tt.diffEvery)
			s, err := Open(db, 1)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Rebuild(context.Background()); err != nil {
				b.Fatal(err)
			}
			if err := db.Pebble().Compact(context.Background(), eventlog.KeyPrefix(1, 0), eventlog.KeyPrefix(2, 0), true); err != nil {
				b.Fatal(err)
			}
			raw := rawVerifyScan(b, db, 1)
			start := time.Now()
			if _, err := db.Log(1).Verify(context.Background(), nil); err != nil {
				b.Fatal(err)
			}
			chain := float64(n) / time.Since(start).Seconds()
			b.ResetTimer()
			for range b.N {
				got, err := s.Verify(context.Background(), nil)
				if err != nil {
					b.Fatal(err)
				}
				if got != uint64(n) {
					b.Fatalf("verified %d events, want %d", got, n)
				}
			}
			b.StopTimer()
			perSec := float64(n) * float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(perSec, "events/s")
			b.ReportMetric(raw, "raw-events/s")
			b.ReportMetric(chain, "chain-events/s")
			b.ReportMetric(perSec/raw, "ratio")
		})
	}
}

// rawVerifyScan is BenchmarkVerify's baseline: events/s of iterating, with
// plain Pebble, every keyspace of dataset that Verify reads, touching each
// value.
func rawVerifyScan(b *testing.B, db *eventlog.DB, dataset uint32) float64 {
	start := time.Now()
	var events, sum int
	for _, space := range []byte{eventlog.SpaceEvents, eventlog.SpaceTime, eventlog.SpaceDocs, eventlog.SpaceHistory, eventlog.SpaceTx} {
		it, err := db.Pebble().NewIter(&pebble.IterOptions{
			LowerBound: eventlog.KeyPrefix(dataset, space),
			UpperBound: eventlog.KeyUpperBound(dataset, space),
		})
		if err != nil {
			b.Fatal(err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			v := it.Value()
			if len(v) > 0 {
				sum += int(v[len(v)-1])
			}
			if space == eventlog.SpaceEvents {
				events++
			}
		}
		if err := it.Close(); err != nil {
			b.Fatal(err)
		}
	}
	if sum == 0 && events > 0 {
		b.Log("values all end in zero") // keeps sum used
	}
	return float64(events) / time.Since(start).Seconds()
}
