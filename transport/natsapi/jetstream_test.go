package natsapi_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
)

// startJetStream starts a NATS server with JetStream storing under dir, on
// 127.0.0.1:port (0: a random port). The caller shuts it down.
func startJetStream(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server with JetStream not ready")
	}
	return ns
}

// streamFixture is an engine served over a JetStream-enabled NATS server,
// with a Publisher on its own connection.
type streamFixture struct {
	ns      *server.Server
	port    int
	jsDir   string
	eng     *vellum.Engine
	srv     *natsapi.Server
	pub     *natsapi.Publisher
	conns   []*nats.Conn
	client  *natsapi.Client
	watchNC *nats.Conn // reads the stream
}

// reconnecting are the options of connections that must survive a NATS
// restart in these tests.
func reconnecting() []nats.Option {
	return []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond), nats.ReconnectJitter(0, 0)}
}

func newStreamFixture(t *testing.T) *streamFixture {
	t.Helper()
	f := &streamFixture{jsDir: t.TempDir()}
	f.ns = startJetStream(t, 0, f.jsDir)
	f.port = f.ns.Addr().(*net.TCPAddr).Port
	eng, err := vellum.Open(t.TempDir(), vellum.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.eng = eng
	connect := func(opts ...nats.Option) *nats.Conn {
		nc, err := nats.Connect(f.ns.ClientURL(), append(reconnecting(), opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		f.conns = append(f.conns, nc)
		return nc
	}
	svcConn := connect()
	if f.srv, err = natsapi.Serve(svcConn, eng, natsapi.Options{Auth: natsapi.AdminToken(testToken, nil)}); err != nil {
		t.Fatal(err)
	}
	pubConn := connect(nats.ReconnectBufSize(-1))
	if f.pub, err = natsapi.PublishEvents(pubConn, eng, natsapi.PublisherOptions{
		RetryInterval: 50 * time.Millisecond, DatasetPoll: 20 * time.Millisecond,
	}); err != nil {
		t.Fatal(err)
	}
	f.client = natsapi.NewClient(connect(), testToken)
	f.watchNC = connect()
	t.Cleanup(func() {
		f.pub.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.srv.Close(ctx); err != nil {
			t.Errorf("closing the service: %v", err)
		}
		for _, nc := range f.conns {
			nc.Close()
		}
		if err := eng.Close(); err != nil {
			t.Errorf("closing the engine: %v", err)
		}
		f.ns.Shutdown()
		f.ns.WaitForShutdown()
	})
	return f
}

// restartNATS stops the NATS server, runs whileDown, then starts a new one
// on the same port with the same JetStream directory.
func (f *streamFixture) restartNATS(t *testing.T, whileDown func()) {
	t.Helper()
	f.ns.Shutdown()
	f.ns.WaitForShutdown()
	whileDown()
	f.ns = startJetStream(t, f.port, f.jsDir)
}

// streamMsg is one message of an event stream, decoded.
type streamMsg struct {
	streamSeq uint64
	msgID     string
	seq       uint64
	hash      string
	event     natsapi.StreamEvent
}

// readStream returns every message of dataset's stream, in order.
func readStream(t *testing.T, nc *nats.Conn, dataset string) []streamMsg {
	t.Helper()
	ctx := ctxT(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := natsapi.StreamName(dataset)
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []streamMsg
	for i := info.State.FirstSeq; i <= info.State.LastSeq && info.State.Msgs > 0; i++ {
		m, err := s.GetMsg(ctx, i)
		if err != nil {
			t.Fatalf("stream %s message %d: %v", name, i, err)
		}
		sm := streamMsg{streamSeq: m.Sequence, msgID: m.Header.Get(jetstream.MsgIDHeader), hash: m.Header.Get(natsapi.HashHeader)}
		if sm.seq, err = strconv.ParseUint(m.Header.Get(natsapi.SeqHeader), 10, 64); err != nil {
			t.Fatalf("message %d: %s header: %v", i, natsapi.SeqHeader, err)
		}
		if err := json.Unmarshal(m.Data, &sm.event); err != nil {
			t.Fatalf("message %d: %v\n%s", i, err, m.Data)
		}
		out = append(out, sm)
	}
	return out
}

// waitPublished waits until the publisher has dataset's whole log in the
// stream.
func (f *streamFixture) waitPublished(t *testing.T, dataset string) uint64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		head, err := f.eng.Head(dataset)
		if err != nil {
			t.Fatal(err)
		}
		if f.pub.Published(dataset) == head {
			return head
		}
		if time.Now().After(deadline) {
			t.Fatalf("dataset %s: the stream holds events up to %d, the log ends at %d, after 30s", dataset, f.pub.Published(dataset), head)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logEvents returns the events 1..head of dataset's log.
func logEvents(t *testing.T, eng *vellum.Engine, dataset string, head uint64) []*vellum.Commit {
	t.Helper()
	w, err := eng.Watch(dataset, 0, vellum.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var out []*vellum.Commit
	for range head {
		c, err := w.Next(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// checkStreamIsLog checks that dataset's stream holds exactly its log: one
// message per event, in order, with the event's transaction id, sequence
// number and hash, and no gap or duplicate.
func checkStreamIsLog(t *testing.T, f *streamFixture, dataset string) []streamMsg {
	t.Helper()
	head := f.waitPublished(t, dataset)
	msgs := readStream(t, f.watchNC, dataset)
	events := logEvents(t, f.eng, dataset, head)
	if uint64(len(msgs)) != head {
		t.Errorf("dataset %s: the stream holds %d messages, the log %d events", dataset, len(msgs), head)
	}
	for i := 0; i < len(msgs) && i < len(events); i++ {
		m, ev := msgs[i], events[i].Event
		if m.seq != ev.Seq || m.msgID != ev.TxID || m.hash != hex.EncodeToString(ev.Hash[:]) ||
			m.event.ID != ev.TxID || m.event.Seq != ev.Seq || m.streamSeq != ev.Seq {
			t.Fatalf("dataset %s: stream message %d is event %d (%s, stream seq %d), want event %d (%s)",
				dataset, i+1, m.seq, m.msgID, m.streamSeq, ev.Seq, ev.TxID)
		}
	}
	return msgs
}

func TestEventStream(t *testing.T) {
	f := newStreamFixture(t)
	ctx := ctxT(t)
	if _, err := f.client.CreateDataset(ctx, "blog", ""); err != nil {
		t.Fatal(err)
	}
	txs := []string{
		`{"mutations":[{"create":{"_id":"post-1","_type":"post","title":"Hello"}},{"create":{"_id":"drafts.post-1","_type":"post","title":"Draft"}}]}`,
		`{"mutations":[{"patch":{"id":"post-1","set":{"title":"Hi"}}}]}`,
		`{"mutations":[{"delete":{"id":"drafts.post-1"}}],"transactionId":"client-chosen-1"}`,
	}
	var ids []string
	for _, tx := range txs {
		res, err := f.client.Mutate(ctx, "blog", []byte(tx))
		if err != nil {
			t.Fatal(err)
		}
		var r vellum.TxResult
		if err := json.Unmarshal(res, &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.TransactionID)
	}
	msgs := checkStreamIsLog(t, f, "blog")
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	type effect struct{ id, op, doc, prev, result string }
	want := []struct {
		docIDs  string
		effects []effect
	}{
		{"post-1 drafts.post-1", []effect{{"post-1", "create", "Hello", "", ids[0]}, {"drafts.post-1", "create", "Draft", "", ids[0]}}},
		{"post-1", []effect{{"post-1", "update", "Hi", ids[0], ids[1]}}},
		{"drafts.post-1", []effect{{"drafts.post-1", "delete", "", ids[0], ""}}},
	}
	zero := hex.EncodeToString(make([]byte, 32))
	for i, m := range msgs {
		ev := m.event
		if ev.ID != ids[i] || ev.Author != "token-admin" || fmt.Sprint(ev.DocumentIDs) != "["+want[i].docIDs+"]" {
			t.Errorf("event %d: id %s author %s documentIDs %v; want %s token-admin [%s]", i+1, ev.ID, ev.Author, ev.DocumentIDs, ids[i], want[i].docIDs)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.Timestamp); err != nil {
			t.Errorf("event %d: timestamp %q: %v", i+1, ev.Timestamp, err)
		}
		var muts []map[string]any
		if err := json.Unmarshal(ev.Mutations, &muts); err != nil || len(muts) == 0 {
			t.Errorf("event %d: mutations %s are not the submitted list (%v)", i+1, ev.Mutations, err)
		}
		prev := zero
		if i > 0 {
			prev = msgs[i-1].event.Hash
		}
		if ev.PreviousHash != prev || ev.Hash != m.hash {
			t.Errorf("event %d: previousHash %s hash %s, want %s and the header's %s", i+1, ev.PreviousHash, ev.Hash, prev, m.hash)
		}
		if len(ev.Effects) != len(want[i].effects) {
			t.Fatalf("event %d: %d effects, want %d", i+1, len(ev.Effects), len(want[i].effects))
		}
		for j, we := range want[i].effects {
			ge := ev.Effects[j]
			var doc map[string]any
			if err := json.Unmarshal(ge.Document, &doc); err != nil {
				t.Fatalf("event %d effect %d: document %s: %v", i+1, j, ge.Document, err)
			}
			title, _ := doc["title"].(string)
			if ge.ID != we.id || ge.Operation != we.op || title != we.doc || ge.PreviousRev != we.prev || ge.ResultRev != we.result {
				t.Errorf("event %d effect %d = %s %s %q prev %q result %q, want %s %s %q prev %q result %q",
					i+1, j, ge.ID, ge.Operation, title, ge.PreviousRev, ge.ResultRev, we.id, we.op, we.doc, we.prev, we.result)
			}
			if we.op == "delete" && doc != nil {
				t.Errorf("event %d effect %d: a delete carries document %s", i+1, j, ge.Document)
			}
			if we.op != "delete" && (doc["_rev"] != we.result || ge.Grant.Group == "") {
				t.Errorf("event %d effect %d: document _rev %v (want %s), grant %+v (want the group that allowed it)", i+1, j, doc["_rev"], we.result, ge.Grant)
			}
		}
	}
	if msgs[2].msgID != "client-chosen-1" {
		t.Errorf("the client-chosen transaction id is published as %q", msgs[2].msgID)
	}

	// A second dataset created while the publisher runs gets its own stream.
	if _, err := f.client.CreateDataset(ctx, "shop", "private"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.Mutate(ctx, "shop", []byte(`{"mutations":[{"create":{"_id":"p","_type":"product"}}]}`)); err != nil {
		t.Fatal(err)
	}
	if got := checkStreamIsLog(t, f, "shop"); len(got) != 1 || got[0].event.DocumentIDs[0] != "p" {
		t.Errorf("stream of shop = %+v", got)
	}
}

// TestEventStreamCatchesUp: a publisher started on a log that already has
// events publishes them all; a second publisher (a restarted daemon)
// continues after the stream's last message, duplicating nothing.
func TestEventStreamCatchesUp(t *testing.T) {
	f := newStreamFixture(t)
	ctx := ctxT(t)
	f.pub.Close() // nothing published while writing
	if _, err := f.eng.CreateDataset(ctx, vellum.SystemPrincipal, "blog", ""); err != nil {
		t.Fatal(err)
	}
	write := func(n int, from int) {
		for i := range n {
			tx := fmt.Sprintf(`{"mutations":[{"create":{"_id":"doc-%d","_type":"t"}}]}`, from+i)
			if _, err := f.eng.Transact(ctx, "blog", vellum.SystemPrincipal, []byte(tx)); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(50, 0)
	newPub := func() {
		nc, err := nats.Connect(f.ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		f.conns = append(f.conns, nc)
		if f.pub, err = natsapi.PublishEvents(nc, f.eng, natsapi.PublisherOptions{DatasetPoll: 10 * time.Millisecond, Window: 7}); err != nil {
			t.Fatal(err)
		}
	}
	newPub()
	checkStreamIsLog(t, f, "blog")
	f.pub.Close()
	write(30, 50)
	newPub()
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := f.pub.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if got := f.pub.Published("blog"); got != 80 {
		t.Errorf("after Flush the stream holds events up to %d, want 80", got)
	}
	if msgs := checkStreamIsLog(t, f, "blog"); len(msgs) != 80 {
		t.Errorf("%d messages after the restart, want 80", len(msgs))
	}
}

// TestEventStreamNATSRestart is the reliability test: NATS is stopped and
// restarted (same port, same JetStream directory) while writers run, over
// NATS and directly. Every acknowledged transaction is in the log, writes
// made while NATS was away committed, and the stream catches up with the
// log without a gap or a duplicate.
func TestEventStreamNATSRestart(t *testing.T) {
	f := newStreamFixture(t)
	ctx := ctxT(t)
	if _, err := f.client.CreateDataset(ctx, "blog", ""); err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		acked     = map[string]bool{} // transaction ids acknowledged over NATS
		direct    atomic.Int64        // transactions committed directly while NATS runs or not
		failed    atomic.Int64        // requests that got no answer
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		docNumber atomic.Int64
	)
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tx := fmt.Sprintf(`{"mutations":[{"create":{"_id":"nats-%d","_type":"t"}}]}`, docNumber.Add(1))
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				res, err := f.client.Mutate(rctx, "blog", []byte(tx))
				cancel()
				if err != nil {
					failed.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				var r vellum.TxResult
				if err := json.Unmarshal(res, &r); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[r.TransactionID] = true
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			tx := fmt.Sprintf(`{"mutations":[{"create":{"_id":"direct-%d","_type":"t"}}]}`, docNumber.Add(1))
			if _, err := f.eng.Transact(ctx, "blog", vellum.SystemPrincipal, []byte(tx)); err != nil {
				t.Error(err)
				return
			}
			direct.Add(1)
			time.Sleep(time.Millisecond)
		}
	})
	time.Sleep(300 * time.Millisecond)
	f.restartNATS(t, func() {
		// Writes go on while NATS is away.
		before, _ := f.eng.Head("blog")
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if now, _ := f.eng.Head("blog"); now >= before+20 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("fewer than 20 transactions committed in 10s while NATS was down")
			}
		}
	})
	time.Sleep(400 * time.Millisecond)
	f.restartNATS(t, func() { time.Sleep(100 * time.Millisecond) }) // and once more
	time.Sleep(400 * time.Millisecond)
	close(stop)
	wg.Wait()

	msgs := checkStreamIsLog(t, f, "blog")
	inLog := map[string]bool{}
	for _, m := range msgs {
		if inLog[m.msgID] {
			t.Errorf("transaction %s is twice in the stream", m.msgID)
		}
		inLog[m.msgID] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range acked {
		if !inLog[id] {
			t.Errorf("acknowledged transaction %s is missing from the log and the stream", id)
		}
	}
	if len(acked) == 0 || direct.Load() == 0 {
		t.Fatalf("the writers made no progress: %d acknowledged over NATS, %d direct", len(acked), direct.Load())
	}
	t.Logf("%d transactions acknowledged over NATS, %d direct, %d requests unanswered during the restarts; stream = log = %d events",
		len(acked), direct.Load(), failed.Load(), len(msgs))
}
