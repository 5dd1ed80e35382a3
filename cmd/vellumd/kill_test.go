package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
	"github.com/vellum-db/vellum/transport/natsauth"
)

// kill stops the daemon with SIGKILL: no shutdown code runs.
func (d *daemon) kill(t *testing.T) {
	t.Helper()
	if d.stopped {
		return
	}
	d.stopped = true
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.done
}

// connectClient connects to the daemon as a service client (a fresh inbox
// prefix, as the vellum CLI does).
func connectClient(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, append(natsapi.ClientOptions(), nats.NoReconnect())...)
	if err != nil {
		t.Fatalf("connecting to %s as a client: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func adminToken(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// streamMsg is one message of an event stream.
type streamMsg struct {
	id   string // Nats-Msg-Id
	seq  uint64 // Vellum-Seq
	body natsapi.StreamEvent
}

// waitStream waits until the last message of dataset's stream is the
// transaction lastTx, then returns every message of the stream, read by a
// connection with the administrator's NATS user (the only client that may
// read the streams of an embedded server).
func waitStream(t *testing.T, url, token, dataset, lastTx string) []streamMsg {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(natsauth.AdminUser, token))
	if err != nil {
		t.Fatalf("connecting as the NATS admin user: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	name, _ := natsapi.StreamName(dataset)
	var s jetstream.Stream
	var last uint64
	for {
		if s == nil {
			s, _ = js.Stream(ctx, name)
		}
		if s != nil {
			if info, err := s.Info(ctx); err == nil && info.State.Msgs > 0 {
				if m, err := s.GetMsg(ctx, info.State.LastSeq); err == nil && m.Header.Get(jetstream.MsgIDHeader) == lastTx {
					last = info.State.LastSeq
					break
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the stream %s did not reach transaction %s within 60s", name, lastTx)
		case <-time.After(20 * time.Millisecond):
		}
	}
	out := make([]streamMsg, 0, last)
	for i := uint64(1); i <= last; i++ {
		m, err := s.GetMsg(ctx, i)
		if err != nil {
			t.Fatalf("stream %s message %d: %v", name, i, err)
		}
		sm := streamMsg{id: m.Header.Get(jetstream.MsgIDHeader)}
		if sm.seq, err = strconv.ParseUint(m.Header.Get(natsapi.SeqHeader), 10, 64); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if err := json.Unmarshal(m.Data, &sm.body); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		out = append(out, sm)
	}
	return out
}

// checkStream checks that msgs is a log without gap or duplicate: message
// i is event i, transaction ids are distinct and the hash chain holds.
func checkStream(t *testing.T, msgs []streamMsg) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	prev := hex.EncodeToString(make([]byte, 32))
	for i, m := range msgs {
		if m.seq != uint64(i+1) || m.body.Seq != m.seq || m.body.ID != m.id {
			t.Fatalf("stream message %d carries event %d (body %d, %s/%s): a gap or a duplicate", i+1, m.seq, m.body.Seq, m.id, m.body.ID)
		}
		if ids[m.id] {
			t.Fatalf("transaction %s is twice in the stream", m.id)
		}
		ids[m.id] = true
		if m.body.PreviousHash != prev {
			t.Fatalf("stream message %d: previousHash %s, want the previous message's hash %s", i+1, m.body.PreviousHash, prev)
		}
		prev = m.body.Hash
	}
	return ids
}

// TestSIGKILL kills the real vellumd with SIGKILL while 16 clients write
// over NATS, restarts it, and checks that every acknowledged transaction is
// there and that the event stream catches up with the log without a gap or
// a duplicate.
func TestSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short")
	}
	bin := buildBinaries(t)
	data := t.TempDir()
	d := startDaemon(t, bin, data)
	token := adminToken(t, data)
	client := natsapi.NewClient(connectClient(t, d.url), token)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if _, err := client.CreateDataset(ctx, "blog", ""); err != nil {
		t.Fatal(err)
	}

	type ack struct{ tx, doc string }
	var (
		mu     sync.Mutex
		acked  []ack
		n      atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	killed := make(chan struct{})
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-killed:
					return
				default:
				}
				doc := fmt.Sprintf("doc-%d", n.Add(1))
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				res, err := client.Mutate(rctx, "blog", []byte(`{"mutations":[{"create":{"_id":"`+doc+`","_type":"t","body":"`+strings.Repeat("x", 200)+`"}}]}`))
				rcancel()
				if err != nil {
					failed.Add(1)
					select {
					case <-killed:
						return
					case <-time.After(5 * time.Millisecond):
					}
					continue
				}
				var r vellum.TxResult
				if err := json.Unmarshal(res, &r); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, ack{r.TransactionID, doc})
				mu.Unlock()
			}
		})
	}
	// Let the writers run, then kill the daemon while they do.
	for {
		mu.Lock()
		k := len(acked)
		mu.Unlock()
		if k >= 500 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.kill(t)
	close(killed)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("killed after %d acknowledged transactions (%d requests failed)", len(acked), failed.Load())

	d2 := startDaemon(t, bin, data)
	defer d2.stop(t)
	client = natsapi.NewClient(connectClient(t, d2.url), token)
	for i := 0; i < len(acked); i += 200 {
		batch := acked[i:min(i+200, len(acked))]
		ids := make([]string, len(batch))
		for j, a := range batch {
			ids[j] = a.doc
		}
		raw, err := client.Get(ctx, "blog", ids, "")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range raw {
			var doc struct{ ID, Rev string }
			var m map[string]any
			if err := json.Unmarshal(r, &m); err != nil {
				t.Fatal(err)
			}
			doc.ID, _ = m["_id"].(string)
			doc.Rev, _ = m["_rev"].(string)
			got[doc.ID] = doc.Rev
		}
		for _, a := range batch {
			if got[a.doc] != a.tx {
				t.Errorf("acknowledged transaction %s (document %s) is lost after SIGKILL: found revision %q", a.tx, a.doc, got[a.doc])
			}
		}
	}

	// One more write; once the stream ends with it, it holds the whole log.
	res, err := client.Mutate(ctx, "blog", []byte(`{"mutations":[{"create":{"_id":"after-restart","_type":"t"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var r vellum.TxResult
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	msgs := waitStream(t, d2.url, token, "blog", r.TransactionID)
	inStream := checkStream(t, msgs)
	for _, a := range acked {
		if !inStream[a.tx] {
			t.Errorf("acknowledged transaction %s is not in the event stream", a.tx)
		}
	}
	if len(msgs) < len(acked)+1 {
		t.Errorf("the stream holds %d events, fewer than the %d acknowledged", len(msgs), len(acked)+1)
	}
	t.Logf("after the restart the stream holds the whole log: %d events", len(msgs))
}
