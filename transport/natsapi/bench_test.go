package natsapi_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// benchClients is the number of concurrent clients, as in issue 5's target.
const benchClients = 64

// BenchmarkMutate measures durable single-mutation transactions per second
// through the service from 64 concurrent clients, next to a bare NATS
// request/reply echo through the same server in the same run, and reports
// the ratio.
func BenchmarkMutate(b *testing.B) {
	f := newFixture(b)
	f.mustCreateDataset(b, "bench")

	// The baseline: an echo responder on its own connection.
	echoConn, err := nats.Connect(f.ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer echoConn.Close()
	if _, err := echoConn.Subscribe("bench.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		b.Fatal(err)
	}
	if err := echoConn.Flush(); err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"mutations":[{"create":{"_id":"doc-0000000000","_type":"t","n":1}}]}`)

	b.ResetTimer()
	echoRate := run(b, b.N, func(int64) error {
		_, err := f.nc.Request("bench.echo", payload, 10*time.Second)
		return err
	})
	var seq atomic.Int64
	base := time.Now().UnixNano()
	txRate := run(b, b.N, func(i int64) error {
		tx := fmt.Sprintf(`{"mutations":[{"create":{"_id":"doc-%d-%d","_type":"t","n":1}}]}`, base, seq.Add(1))
		_, err := f.client.Mutate(ctxT(b), "bench", []byte(tx))
		return err
	})
	b.StopTimer()
	b.ReportMetric(txRate, "tx/s")
	b.ReportMetric(echoRate, "echo/s")
	b.ReportMetric(txRate/echoRate, "tx/echo")
}

// run calls do n times from benchClients goroutines and returns the calls
// per second.
func run(b *testing.B, n int, do func(i int64) error) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range benchClients {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if err := do(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}
