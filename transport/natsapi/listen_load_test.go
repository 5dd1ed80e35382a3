package natsapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/cmd/vellumd/gcfloor"
	"github.com/vellum-db/vellum/transport/natsapi"
)

// The fan-out load test (go tool task load:fanout): LISTENERS listeners of
// IDENTITIES end users in GRANT_SETS groups, each listener with a _type
// filter (one of TYPES types), under a steady RATE transactions per second
// for DURATION. Each transaction creates one document of a random type and
// region; group k reads every region but its own, so a document reaches
// the listeners of its type in all groups but one.
//
// The test process is the daemon: the embedded NATS server, the engine
// and the service, nothing else. The load (writers and listeners, over
// NATS) runs in a second process, this test binary run again in client
// mode, so the CPU time and memory measured for the daemon are its own.
//
// Environment: VELLUM_LOAD_FANOUT=1 to run; VELLUM_FANOUT_LISTENERS,
// _IDENTITIES, _GRANT_SETS, _TYPES, _RATE, _DURATION (a Go duration),
// _WRITERS to change the shape (defaults 10000, 1000, 50, 100, 1000, 20s,
// 512).

const (
	fanoutRun       = "VELLUM_LOAD_FANOUT"
	fanoutClientEnv = "VELLUM_FANOUT_CLIENT"
	fanoutAdmin     = "fanout-admin-token-0123456789"
	fanoutSecret    = "fanout-load-test-hs256-secret-0123456789"
)

type fanoutShape struct {
	Listeners, Identities, GrantSets, Types, Rate int
	Duration                                      time.Duration
}

func fanoutEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv("VELLUM_FANOUT_" + name)); err == nil && v > 0 {
		return v
	}
	return def
}

func loadShape() fanoutShape {
	s := fanoutShape{
		Listeners: fanoutEnvInt("LISTENERS", 10000), Identities: fanoutEnvInt("IDENTITIES", 1000),
		GrantSets: fanoutEnvInt("GRANT_SETS", 50), Types: fanoutEnvInt("TYPES", 100), Rate: fanoutEnvInt("RATE", 1000),
		Duration: 20 * time.Second,
	}
	if d, err := time.ParseDuration(os.Getenv("VELLUM_FANOUT_DURATION")); err == nil && d > 0 {
		s.Duration = d
	}
	return s
}

// The listener j is identity j % Identities, in group identity %
// GrantSets, with filter _type == "t<type>".
func (s fanoutShape) identity(j int) int { return j % s.Identities }
func (s fanoutShape) group(i int) int    { return i % s.GrantSets }
func (s fanoutShape) typeOf(j int) int   { return (j/s.Identities*7 + j) % s.Types }

// fanoutResult is what the load process reports.
type fanoutResult struct {
	Transactions, TxErrors    int
	WriteSeconds              float64
	Expected, Delivered       int64
	Unexpected                int64         // events no listener should have had
	P50, P99, Max             time.Duration // from the transaction's time (in the event) to receipt
	AckP50, AckP99, AckMax    time.Duration // from the writer's acknowledgment (after the sync) to receipt; 0 when the event came first
	EarlyEvents               int64         // events received before their writer's acknowledgment
	MutateP50, MutateP99      time.Duration // the writers' round trips (sync included)
	ClientCPUSeconds          float64
	ListenersReady            int
	ListenSetupSeconds        float64
	DeliveredPerSecond        float64
	TransactionsPerSecondReal float64
}

func TestFanoutLoad(t *testing.T) {
	if os.Getenv(fanoutClientEnv) != "" {
		fanoutClient(t)
		return
	}
	if os.Getenv(fanoutRun) == "" {
		t.Skip("the fan-out load test runs with " + fanoutRun + "=1 (go tool task load:fanout)")
	}
	shape := loadShape()
	// The daemon's side runs with vellumd's garbage-collector setting, so
	// that its CPU and RSS are the daemon's.
	defer gcfloor.Start(gcfloor.DefaultFloor)()
	ns := startNATS(t)
	eng, err := vellum.Open(t.TempDir(), vellum.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	v, err := authz.NewJWTVerifier(authz.JWTConfig{HS256Secret: []byte(fanoutSecret)})
	if err != nil {
		t.Fatal(err)
	}
	svcConn, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer svcConn.Close()
	srv, err := natsapi.Serve(svcConn, eng, natsapi.Options{Auth: natsapi.AdminToken(fanoutAdmin, &authz.Authenticator{JWT: v, Tokens: eng})})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	ctx := context.Background()
	if _, err := eng.CreateDataset(ctx, vellum.SystemPrincipal, "load", "private"); err != nil {
		t.Fatal(err)
	}
	for g := range shape.GrantSets {
		var members []string
		for i := g; i < shape.Identities; i += shape.GrantSets {
			members = append(members, fmt.Sprintf("u%d", i))
		}
		doc := map[string]any{"_id": fmt.Sprintf("_.groups.g%d", g), "_type": "system.group", "members": members,
			"grants": []any{map[string]any{"filter": fmt.Sprintf(`region != "r%d"`, g), "permissions": []any{"read"}}}}
		body, _ := json.Marshal(map[string]any{"mutations": []any{map[string]any{"create": doc}}})
		if _, err := eng.Transact(ctx, "load", vellum.SystemPrincipal, body); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestFanoutLoad$", "-test.v", "-test.timeout=30m")
	cmd.Env = append(os.Environ(), fanoutClientEnv+"="+ns.ClientURL())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var (
		cpu0, cpu1     float64
		wall0, wall1   time.Time
		stats0, stats1 vellum.ListenStats
		rssDuring      int64
		result         fanoutResult
		gotResult      bool
	)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "FANOUT START":
			cpu0, wall0 = procCPU(t, "self"), time.Now()
			stats0, _ = eng.ListenStats("load")
		case line == "FANOUT STOP":
			cpu1, wall1 = procCPU(t, "self"), time.Now()
			stats1, _ = eng.ListenStats("load")
			rssDuring = procStatusKB(t, "VmRSS")
		case strings.HasPrefix(line, "FANOUT RESULT "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "FANOUT RESULT ")), &result); err != nil {
				t.Fatal(err)
			}
			gotResult = true
		case strings.HasPrefix(line, "FANOUT "):
			t.Log(line)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the load process failed: %v", err)
	}
	if !gotResult || wall1.IsZero() {
		t.Fatal("the load process reported no result")
	}
	commits := stats1.Commits - stats0.Commits
	reads := float64(stats1.ReadEvals-stats0.ReadEvals) / float64(commits)
	filters := float64(stats1.FilterEvals-stats0.FilterEvals) / float64(commits)
	secs := wall1.Sub(wall0).Seconds()
	report := fmt.Sprintf(`fan-out load: %d listeners, %d identities, %d grant sets, %d types, %d tx/s target for %s
  transactions:        %d committed (%d errors), %.0f tx/s achieved
  events:              %d delivered of %d expected (%d unexpected), %.0f events/s
  commit-to-delivery:  p50 %s, p99 %s, max %s (from the writer's acknowledgment, sent after the sync; %d events arrived before it)
  tx-time-to-delivery: p50 %s, p99 %s, max %s (from the transaction time in the event, before the sync)
  mutate round trip:   p50 %s, p99 %s (the writers' requests, sync included)
  evaluations per tx:  %.2f read decisions + %.2f filter evaluations (hub max %d per commit); %d commits, %d of them read back from the log
  daemon process:      CPU %.2f cores (%.1f s over %.1f s), RSS %d MiB during the run, peak %d MiB
  load process:        CPU %.2f cores; listeners ready in %.1f s`,
		shape.Listeners, shape.Identities, shape.GrantSets, shape.Types, shape.Rate, shape.Duration,
		result.Transactions, result.TxErrors, result.TransactionsPerSecondReal,
		result.Delivered, result.Expected, result.Unexpected, result.DeliveredPerSecond,
		result.AckP50, result.AckP99, result.AckMax, result.EarlyEvents,
		result.P50, result.P99, result.Max,
		result.MutateP50, result.MutateP99,
		reads, filters, stats1.MaxEvalsPerCommit, commits, stats1.LogCommits-stats0.LogCommits,
		(cpu1-cpu0)/secs, cpu1-cpu0, secs, rssDuring/1024, procStatusKB(t, "VmHWM")/1024,
		result.ClientCPUSeconds/result.WriteSeconds, result.ListenSetupSeconds)
	t.Log("\n" + report)
	fmt.Println(report)
	if result.Delivered != result.Expected || result.Unexpected != 0 {
		t.Errorf("delivered %d events, %d unexpected; want exactly the %d expected", result.Delivered, result.Unexpected, result.Expected)
	}
	if reads+filters > float64(shape.GrantSets+shape.Types) {
		t.Errorf("%.1f evaluations per transaction: more than grant sets + filters", reads+filters)
	}
}

// procCPU returns the user and system CPU seconds of a process.
func procCPU(t *testing.T, pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		t.Fatalf("reading CPU time: %v", err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// procStatusKB returns a kB field of /proc/self/status.
func procStatusKB(t *testing.T, field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("reading memory use: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// fanoutClient is the load process: listeners and writers over NATS.
func fanoutClient(t *testing.T) {
	shape := loadShape()
	url := os.Getenv(fanoutClientEnv)
	say := func(format string, args ...any) { fmt.Printf("FANOUT "+format+"\n", args...) }

	// Listener connections: 100 listeners per connection. Each connection
	// has one subscription on its inbox prefix; listener j's inbox is
	// <prefix>.<j>, so that messages are told apart by subject without a
	// subscription (and a goroutine) per listener.
	nconns := (shape.Listeners + 99) / 100
	tokens := make([]string, shape.Identities)
	for i := range tokens {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": fmt.Sprintf("u%d", i), "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(fanoutSecret))
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = tok
	}
	type receipt struct {
		n  int
		at time.Time
	}
	var (
		delivered, unexpected, welcomed atomic.Int64
		lat                             = make([][]time.Duration, shape.Listeners)
		recv                            = make([][]receipt, shape.Listeners)
		badMsg                          atomic.Value
	)
	wantType := make([][]byte, shape.Listeners)
	hidden := make([][]byte, shape.Listeners)
	for j := range shape.Listeners {
		wantType[j] = []byte(fmt.Sprintf(`"documentId":"t%d-`, shape.typeOf(j)))
		hidden[j] = []byte(fmt.Sprintf("-r%d-", shape.group(shape.identity(j))))
	}
	handle := func(j int, m *nats.Msg) {
		raw := m.Data
		now := time.Now()
		switch {
		case len(raw) == 0:
			return // heartbeat
		case bytes.HasPrefix(raw, []byte(`{"type":"welcome"`)):
			welcomed.Add(1)
			return
		case !bytes.HasPrefix(raw, []byte(`{"type":"mutation"`)):
			badMsg.Store(fmt.Sprintf("listener %d: %s", j, raw))
			return
		}
		i := bytes.Index(raw, []byte(`"timestamp":"`))
		if i < 0 {
			return
		}
		rest := raw[i+len(`"timestamp":"`):]
		ts, err := time.Parse(time.RFC3339Nano, string(rest[:bytes.IndexByte(rest, '"')]))
		if err != nil {
			return
		}
		// Document ids are t<type>-r<region>-<n>: a listener must get only
		// its type, and never its group's hidden region.
		if !bytes.Contains(raw, wantType[j]) || bytes.Contains(raw, hidden[j]) {
			unexpected.Add(1)
		}
		delivered.Add(1)
		lat[j] = append(lat[j], now.Sub(ts))
		if k := bytes.Index(raw, []byte(`"documentId":"`)); k >= 0 {
			id := raw[k+len(`"documentId":"`):]
			id = id[:bytes.IndexByte(id, '"')]
			if n, err := strconv.Atoi(string(id[bytes.LastIndexByte(id, '-')+1:])); err == nil {
				recv[j] = append(recv[j], receipt{n, now})
			}
		}
	}
	conns := make([]*nats.Conn, nconns)
	prefixes := make([]string, nconns)
	for k := range conns {
		nc, err := nats.Connect(url, nats.Name(fmt.Sprintf("fanout listeners %d", k)))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		conns[k], prefixes[k] = nc, nc.NewInbox()
		// One callback goroutine per connection: messages of one listener
		// stay in order.
		sub, err := nc.Subscribe(prefixes[k]+".*", func(m *nats.Msg) {
			j, err := strconv.Atoi(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:])
			if err == nil && j >= 0 && j < shape.Listeners {
				handle(j, m)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = sub.SetPendingLimits(-1, -1)
	}
	setup := time.Now()
	subject, _ := natsapi.ListenSubject("load")
	for j := range shape.Listeners {
		body, _ := json.Marshal(natsapi.ListenRequest{Filter: fmt.Sprintf(`_type == "t%d"`, shape.typeOf(j))})
		m := nats.NewMsg(subject)
		m.Reply = fmt.Sprintf("%s.%d", prefixes[j%nconns], j)
		m.Data = body
		m.Header.Set(natsapi.AuthorizationHeader, "Bearer "+tokens[shape.identity(j)])
		if err := conns[j%nconns].PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		for int64(j)-welcomed.Load() > 500 { // at most 500 requests in flight
			time.Sleep(time.Millisecond)
		}
	}
	for welcomed.Load() < int64(shape.Listeners) {
		if msg, _ := badMsg.Load().(string); msg != "" {
			t.Fatalf("while starting listeners: %s", msg)
		}
		if time.Since(setup) > 5*time.Minute {
			t.Fatalf("%d of %d listeners welcomed after 5 minutes", welcomed.Load(), shape.Listeners)
		}
		time.Sleep(10 * time.Millisecond)
	}
	setupSecs := time.Since(setup).Seconds()
	say("listeners ready: %d in %.1fs", shape.Listeners, setupSecs)

	// Writers: RATE transactions per second for DURATION, each creating
	// one new document, over 16 connections, by WRITERS (512) concurrent
	// requests: enough to keep RATE with a sync of a few hundred ms, which
	// the engine's group commit shares among them.
	wconns := make([]*natsapi.Client, 16)
	for k := range wconns {
		nc, err := nats.Connect(url, nats.Name(fmt.Sprintf("fanout writer %d", k)))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		wconns[k] = natsapi.NewClient(nc, fanoutAdmin)
	}
	// expected[type][region] counts the listeners of type that may read
	// region.
	perTypeGroup := make([][]int64, shape.Types)
	for ty := range perTypeGroup {
		perTypeGroup[ty] = make([]int64, shape.GrantSets)
	}
	for j := range shape.Listeners {
		perTypeGroup[shape.typeOf(j)][shape.group(shape.identity(j))]++
	}
	reach := func(ty, region int) int64 {
		var n int64
		for g, c := range perTypeGroup[ty] {
			if g != region {
				n += c
			}
		}
		return n
	}
	total := int(float64(shape.Rate) * shape.Duration.Seconds())
	var expected atomic.Int64
	var txErrs atomic.Int64
	acked := make([]time.Time, total)
	mutateRTT := make([]time.Duration, total)
	txs := make(chan int, 1024)
	var wwg sync.WaitGroup
	for k := range fanoutEnvInt("WRITERS", 512) {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			c := wconns[k%len(wconns)]
			for n := range txs {
				ty, region := (n*31+7)%shape.Types, (n*17+3)%shape.GrantSets
				body := fmt.Sprintf(`{"mutations":[{"create":{"_id":"t%d-r%d-%d","_type":"t%d","region":"r%d","n":%d}}]}`, ty, region, n, ty, region, n)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				sent := time.Now()
				_, err := c.Mutate(ctx, "load", []byte(body))
				cancel()
				acked[n] = time.Now()
				mutateRTT[n] = acked[n].Sub(sent)
				if err != nil {
					txErrs.Add(1)
					continue
				}
				expected.Add(reach(ty, region))
			}
		}()
	}
	cpuStart := procCPU(t, "self")
	say("START")
	start := time.Now()
	for n := range total {
		due := start.Add(time.Duration(float64(n) / float64(shape.Rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		txs <- n
	}
	close(txs)
	wwg.Wait()
	writeSecs := time.Since(start).Seconds()
	say("STOP")
	cpu := procCPU(t, "self") - cpuStart
	// Drain: wait until every expected event arrived (or 15s passed).
	deadline := time.Now().Add(15 * time.Second)
	for delivered.Load() < expected.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if msg, _ := badMsg.Load().(string); msg != "" {
		t.Errorf("unexpected listener message: %s", msg)
	}
	// Draining waits for the callbacks in progress: then lat and recv are
	// ours alone.
	for _, nc := range conns {
		_ = nc.Drain()
	}
	for _, nc := range conns {
		for !nc.IsClosed() {
			time.Sleep(5 * time.Millisecond)
		}
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	q := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	r := fanoutResult{
		Transactions: total - int(txErrs.Load()), TxErrors: int(txErrs.Load()), WriteSeconds: writeSecs,
		Expected: expected.Load(), Delivered: delivered.Load(), Unexpected: unexpected.Load(),
		P50: q(0.50), P99: q(0.99), ClientCPUSeconds: cpu, ListenersReady: shape.Listeners, ListenSetupSeconds: setupSecs,
		DeliveredPerSecond:        float64(delivered.Load()) / writeSecs,
		TransactionsPerSecondReal: float64(total-int(txErrs.Load())) / writeSecs,
	}
	if len(all) > 0 {
		r.Max = all[len(all)-1]
	}
	var fromAck []time.Duration
	for _, rs := range recv {
		for _, x := range rs {
			d := x.at.Sub(acked[x.n])
			if d < 0 {
				r.EarlyEvents++
				d = 0
			}
			fromAck = append(fromAck, d)
		}
	}
	slices.Sort(fromAck)
	slices.Sort(mutateRTT)
	if len(fromAck) > 0 {
		r.AckP50, r.AckP99, r.AckMax = fromAck[len(fromAck)/2], fromAck[min(len(fromAck)-1, len(fromAck)*99/100)], fromAck[len(fromAck)-1]
	}
	r.MutateP50, r.MutateP99 = mutateRTT[len(mutateRTT)/2], mutateRTT[min(len(mutateRTT)-1, len(mutateRTT)*99/100)]
	b, _ := json.Marshal(r)
	fmt.Printf("FANOUT RESULT %s\n", b)
}
