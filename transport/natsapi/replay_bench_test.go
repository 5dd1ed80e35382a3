package natsapi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
)

// BenchmarkReplayOverNATS measures a replay as `vellum replay` makes it:
// the log read page by page over a real NATS server (default 1 MiB
// messages) and replayed into a new store, for a dataset of
// VELLUM_BENCH_TX one-document transactions (20,000 by default). The
// baseline is the engine's own ReplayTo of the same log into a new store,
// without NATS, in the same run; the ratio is what paging over NATS costs.
func BenchmarkReplayOverNATS(b *testing.B) {
	n := 20_000
	if v, err := strconv.Atoi(os.Getenv("VELLUM_BENCH_TX")); err == nil && v > 0 {
		n = v
	}
	f := newFixtureAuth(b, func(*vellum.Engine) natsapi.Authenticator { return natsapi.AdminToken(testToken, nil) })
	ctx := context.Background()
	if _, err := f.eng.CreateDataset(ctx, vellum.SystemPrincipal, "bench", "public"); err != nil {
		b.Fatal(err)
	}
	// Writers in parallel, so that group commit batches their syncs.
	const writers = 16
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				body := fmt.Sprintf(`{"mutations":[{"createOrReplace":{"_id":"doc-%05d","_type":"post","n":%d,"title":"A title of a typical length for a post","tags":["news","go"]}}]}`, i%5000, i)
				if _, err := f.eng.Transact(ctx, "bench", vellum.SystemPrincipal, []byte(body)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	head, err := f.eng.Head("bench")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var overNATS, direct time.Duration
	for i := range b.N {
		start := time.Now()
		first, err := f.client.EventsPage(ctx, "bench", natsapi.EventsRequest{})
		if err != nil {
			b.Fatal(err)
		}
		src := func(ctx context.Context, emit func([]byte) error) error {
			return vellum.PageEvents(ctx, first, func(ctx context.Context, after uint64, limit int) (*vellum.EventsPage, error) {
				return f.client.EventsPage(ctx, "bench", natsapi.EventsRequest{ToSeq: first.To, After: after, Limit: limit})
			}, emit)
		}
		res, err := vellum.Replay(ctx, filepath.Join(b.TempDir(), "nats"+strconv.Itoa(i)), "bench", first.ACL, src, vellum.ReplayOptions{Events: first.To})
		if err != nil {
			b.Fatal(err)
		}
		overNATS += time.Since(start)
		if res.Events != head {
			b.Fatalf("replayed %d events over NATS, want %d", res.Events, head)
		}
		b.StopTimer()
		start = time.Now()
		res2, err := f.eng.ReplayTo(ctx, "bench", vellum.SystemPrincipal, vellum.Point{}, filepath.Join(b.TempDir(), "direct"+strconv.Itoa(i)), vellum.ReplayOptions{})
		if err != nil || res2.Events != head || res2.HeadHash != res.HeadHash {
			b.Fatalf("direct replay: %+v, %v; over NATS %+v", res2, err, res)
		}
		direct += time.Since(start)
		b.StartTimer()
	}
	rate := float64(int(head)*b.N) / overNATS.Seconds()
	base := float64(int(head)*b.N) / direct.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(base, "engine-events/s")
	b.Logf("%d events: replay over NATS %.0f events/s; the engine's own ReplayTo of the same log %.0f events/s; ratio %.2f", head, rate, base, rate/base)
}
