package natsapi_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/cmd/vellumd/gcfloor"
	"github.com/vellum-db/vellum/transport/natsapi"
)

// benchClients is the number of concurrent clients, as in issue 5's target.
const benchClients = 64

// vellumdGC gives the process the garbage collector's setting that vellumd
// runs with: its default heap floor (package gcfloor), or the floor in MiB
// that VELLUM_BENCH_GC_FLOOR_MIB names (0: GOGC alone, as a library user
// without the floor would have it). It reports the floor and returns the
// function that restores the collector's setting.
func vellumdGC(b *testing.B) func() {
	floor := uint64(gcfloor.DefaultFloor)
	if v, err := strconv.Atoi(os.Getenv("VELLUM_BENCH_GC_FLOOR_MIB")); err == nil && v >= 0 {
		floor = uint64(v) << 20
	}
	b.ReportMetric(float64(floor>>20), "gc-floor-MiB")
	return gcfloor.Start(floor)
}

// BenchmarkMutate measures durable single-mutation transactions per second
// through the service from 64 concurrent clients, next to two baselines
// measured in the same run: a bare NATS request/reply echo through the same
// server, and JetStream publishing to a file stream with sync: always (each
// message synced, as a transaction is) from 64 concurrent publishers on a
// server of its own. It reports the rates and the ratios. The transactions
// run with vellumd's garbage-collector setting (vellumdGC), as the daemon
// would; the baselines with Go's default, as bare NATS would.
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
	cpu := processCPU()
	echoRate := run(b, b.N, func(int64) error {
		_, err := f.nc.Request("bench.echo", payload, 10*time.Second)
		return err
	})
	echoCPU := processCPU() - cpu
	// The baselines run under Go's default collector, the transactions
	// under vellumd's.
	stopGC := vellumdGC(b)
	defer stopGC()
	var seq atomic.Int64
	base := time.Now().UnixNano()
	// One context for every call: ctxT would register a cleanup per call,
	// which the test framework keeps until the benchmark ends.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cpu = processCPU()
	txRate := run(b, b.N, func(i int64) error {
		tx := fmt.Sprintf(`{"mutations":[{"create":{"_id":"doc-%d-%d","_type":"t","n":1}}]}`, base, seq.Add(1))
		_, err := f.client.Mutate(ctx, "bench", []byte(tx))
		return err
	})
	txCPU := processCPU() - cpu
	stopGC()
	jsRate := jetStreamSyncAlwaysRate(b, payload)
	b.StopTimer()
	b.ReportMetric(txRate, "tx/s")
	b.ReportMetric(echoRate, "echo/s")
	b.ReportMetric(jsRate, "js/s")
	b.ReportMetric(txRate/echoRate, "tx/echo")
	b.ReportMetric(txRate/jsRate, "tx/js")
	// Process CPU (clients, server, engine and NATS server alike) per call:
	// on a machine whose cores are busy, a steadier figure than the rates.
	b.ReportMetric(float64(txCPU.Microseconds())/float64(b.N), "cpu-µs/tx")
	b.ReportMetric(float64(echoCPU.Microseconds())/float64(b.N), "echo-cpu-µs/req")
}

// processCPU returns the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// jetStreamSyncAlwaysRate starts a NATS server with JetStream syncing every
// message (sync: always) on its own directory, and returns the messages per
// second that b.N synchronous publishes from benchClients goroutines reach.
func jetStreamSyncAlwaysRate(b *testing.B, payload []byte) float64 {
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: b.TempDir(), SyncAlways: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("JetStream server not ready")
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "bench", Subjects: []string{"bench.js"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	return run(b, b.N, func(int64) error {
		_, err := js.Publish(ctx, "bench.js", payload)
		return err
	})
}

// BenchmarkMutateStream is BenchmarkMutate as vellumd runs it: the engine's
// JetStream publisher streams every transaction to the dataset's stream on
// the service's NATS server (JetStream's default sync interval) while 64
// clients write. Next to the transaction rate it reports the echo baseline
// of the same server and catch-up-ms: how long after the last
// acknowledgement the stream held the whole log.
func BenchmarkMutateStream(b *testing.B) {
	ns := startJetStream(b, 0, b.TempDir())
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	eng, err := vellum.Open(b.TempDir(), vellum.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	conns := make([]*nats.Conn, 4)
	for i := range conns {
		if conns[i], err = nats.Connect(ns.ClientURL()); err != nil {
			b.Fatal(err)
		}
		defer conns[i].Close()
	}
	srv, err := natsapi.Serve(conns[0], eng, natsapi.Options{Auth: natsapi.AdminToken(testToken, nil)})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close(context.Background())
	pub, err := natsapi.PublishEvents(conns[1], eng, natsapi.PublisherOptions{DatasetPoll: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	client := natsapi.NewClient(conns[2], testToken)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := client.CreateDataset(ctx, "bench", ""); err != nil {
		b.Fatal(err)
	}
	if _, err := conns[3].Subscribe("bench.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		b.Fatal(err)
	}
	if err := conns[3].Flush(); err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"mutations":[{"create":{"_id":"doc-0000000000","_type":"t","n":1}}]}`)

	b.ResetTimer()
	echoRate := run(b, b.N, func(int64) error {
		_, err := conns[2].Request("bench.echo", payload, 10*time.Second)
		return err
	})
	defer vellumdGC(b)()
	var seq atomic.Int64
	base := time.Now().UnixNano()
	txRate := run(b, b.N, func(i int64) error {
		tx := fmt.Sprintf(`{"mutations":[{"create":{"_id":"doc-%d-%d","_type":"t","n":1}}]}`, base, seq.Add(1))
		_, err := client.Mutate(ctx, "bench", []byte(tx))
		return err
	})
	acked := time.Now()
	head, err := eng.Head("bench")
	if err != nil {
		b.Fatal(err)
	}
	for pub.Published("bench") < head {
		if time.Since(acked) > time.Minute {
			b.Fatalf("the stream holds %d of %d events a minute after the last acknowledgement", pub.Published("bench"), head)
		}
		time.Sleep(time.Millisecond)
	}
	catchUp := time.Since(acked)
	b.StopTimer()
	b.ReportMetric(txRate, "tx/s")
	b.ReportMetric(echoRate, "echo/s")
	b.ReportMetric(txRate/echoRate, "tx/echo")
	b.ReportMetric(float64(catchUp.Microseconds())/1000, "catch-up-ms")
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
