package eventlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func openMem(t testing.TB) *DB {
	t.Helper()
	db, err := Open("db", &Options{FS: vfs.NewMem(), CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testEvent is event seq of a synthetic stream: one create of doc-<seq%50>.
func testEvent(seq uint64, at time.Time) *Event {
	id := fmt.Sprintf("doc-%d", seq%50)
	txid := fmt.Sprintf("tx-%06d", seq)
	return &Event{
		Seq: seq, TxID: txid, Time: at, Identity: "tester",
		Mutations: []byte(`[{"createOrReplace":{"_id":"` + id + `"}}]`),
		Effects: []Effect{{DocID: id, Operation: OpUpdate, NewRev: txid,
			Doc: []byte(`{"_id":"` + id + `","_rev":"` + txid + `"}`), Grant: GrantRef{Group: "_.groups.administrator"}}},
	}
}

// appendN appends n synthetic events to l after its head, perBatch events to
// a batch, committed with opts. Event i (1-based) has time base+i seconds/2
// (so two events share each second).
func appendN(t testing.TB, db *DB, l *Log, n, perBatch int, opts *pebble.WriteOptions, base time.Time) {
	t.Helper()
	seq, hash, err := l.Head()
	if err != nil {
		t.Fatal(err)
	}
	b := db.Pebble().NewBatch()
	for i := 0; i < n; i++ {
		seq++
		ev := testEvent(seq, base.Add(time.Duration(seq/2)*time.Second))
		ev.PrevHash = hash
		if err := l.Append(b, ev); err != nil {
			t.Fatal(err)
		}
		hash = ev.Hash
		if (i+1)%perBatch == 0 || i == n-1 {
			if err := b.Commit(opts); err != nil {
				t.Fatal(err)
			}
			b.Close()
			b = db.Pebble().NewBatch()
		}
	}
	b.Close()
}

func TestAppendHeadGetLookup(t *testing.T) {
	db := openMem(t)
	l, other := db.Log(1), db.Log(2)
	if seq, hash, err := l.Head(); err != nil || seq != 0 || hash != ([32]byte{}) {
		t.Fatalf("empty head = %d %x %v", seq, hash, err)
	}
	appendN(t, db, l, 100, 7, pebble.Sync, t0)
	appendN(t, db, other, 3, 1, pebble.Sync, t0)

	seq, hash, err := l.Head()
	if err != nil || seq != 100 {
		t.Fatalf("head = %d, %v; want 100", seq, err)
	}
	last, err := l.Get(100)
	if err != nil {
		t.Fatal(err)
	}
	if last.Hash != hash {
		t.Fatalf("head hash %x differs from event 100's %x", hash, last.Hash)
	}
	if seq, _, _ := other.Head(); seq != 3 {
		t.Fatalf("dataset 2 head = %d, want 3 (datasets must not mix)", seq)
	}
	ev, err := l.Get(42)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Seq != 42 || ev.TxID != "tx-000042" || ev.Effects[0].DocID != "doc-42" {
		t.Fatalf("event 42 = %+v", ev)
	}
	prev, _ := l.Get(41)
	if ev.PrevHash != prev.Hash {
		t.Fatal("event 42 does not chain to event 41")
	}

	for _, tt := range []struct {
		seq  uint64
		code string
	}{{0, CodeEventNotFound}, {101, CodeEventNotFound}} {
		_, err := l.Get(tt.seq)
		var e *Error
		if !errors.As(err, &e) || e.Code != tt.code || e.Seq != tt.seq || e.Dataset != 1 {
			t.Errorf("Get(%d) error = %v, want %s at event %d", tt.seq, err, tt.code, tt.seq)
		}
	}

	lookups := []struct {
		log  *Log
		txid string
		seq  uint64
		ok   bool
	}{
		{l, "tx-000001", 1, true},
		{l, "tx-000100", 100, true},
		{l, "tx-000101", 0, false},
		{other, "tx-000003", 3, true},
		{other, "tx-000004", 0, false},
		{l, "", 0, false},
	}
	for _, tt := range lookups {
		seq, ok, err := tt.log.LookupTx(tt.txid)
		if err != nil || seq != tt.seq || ok != tt.ok {
			t.Errorf("LookupTx(%q) on dataset %d = %d, %v, %v; want %d, %v", tt.txid, tt.log.Dataset(), seq, ok, err, tt.seq, tt.ok)
		}
	}
}

func TestSeqAtTime(t *testing.T) {
	db := openMem(t)
	l := db.Log(7)
	if seq, err := l.SeqAtTime(t0); err != nil || seq != 0 {
		t.Fatalf("empty log: %d, %v", seq, err)
	}
	appendN(t, db, l, 9, 4, pebble.NoSync, t0) // event i at t0 + (i/2) s
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tests := []struct {
		at   time.Time
		want uint64
	}{
		{sec(-1), 0},
		{sec(-1e-9), 0},
		{t0, 1},          // events 1 at t0
		{sec(0.5), 1},    // still only event 1
		{sec(1), 3},      // events 2, 3 at +1s
		{sec(1.999), 3},  // before event 4
		{sec(4), 9},      // events 8, 9 at +4s
		{sec(1000), 9},   // after the end
		{time.Time{}, 0}, // before the representable range
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), 9},
	}
	for _, tt := range tests {
		got, err := l.SeqAtTime(tt.at)
		if err != nil || got != tt.want {
			t.Errorf("SeqAtTime(%v) = %d, %v; want %d", tt.at, got, err, tt.want)
		}
	}
}

func TestScan(t *testing.T) {
	db := openMem(t)
	l := db.Log(1)
	appendN(t, db, l, 30, 8, pebble.NoSync, t0)
	var seen []uint64
	err := l.Scan(context.Background(), 11, func(ev *Event) error {
		seen = append(seen, ev.Seq)
		if ev.Seq == 20 {
			return errStop
		}
		return nil
	})
	if err != errStop || len(seen) != 10 || seen[0] != 11 || seen[9] != 20 {
		t.Fatalf("Scan from 11 stopped at 20: saw %v, err %v", seen, err)
	}
}

var errStop = errors.New("stop")

func TestVerify(t *testing.T) {
	const n = 50
	build := func(t *testing.T) (*DB, *Log) {
		db := openMem(t)
		l := db.Log(3)
		appendN(t, db, l, n, 9, pebble.NoSync, t0)
		appendN(t, db, db.Log(4), 5, 9, pebble.NoSync, t0)
		return db, l
	}
	rewrite := func(t *testing.T, db *DB, l *Log, seq uint64, f func(ev *Event)) {
		ev, err := l.Get(seq)
		if err != nil {
			t.Fatal(err)
		}
		f(ev)
		b := db.Pebble().NewBatch()
		defer b.Close()
		if err := l.Append(b, ev); err != nil { // recomputes ev.Hash from ev.PrevHash
			t.Fatal(err)
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *DB, l *Log)
		seq    uint64 // where Verify must fail; 0 = must pass
		reason string
	}{
		{"intact", func(*testing.T, *DB, *Log) {}, 0, ""},
		{"byte flipped in a stored event", func(t *testing.T, db *DB, l *Log) {
			k := EventKey(3, 17)
			v, closer, err := db.Pebble().Get(k)
			if err != nil {
				t.Fatal(err)
			}
			v = append([]byte(nil), v...)
			closer.Close()
			i := bytes.Index(v, []byte("tester"))
			if i < 0 {
				t.Fatal("identity not found in the stored event")
			}
			v[i] = 'T'
			if err := db.Pebble().Set(k, v, pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, 17, "hash differs"},
		{"event rewritten with a valid hash of its own", func(t *testing.T, db *DB, l *Log) {
			rewrite(t, db, l, 23, func(ev *Event) { ev.Identity = "mallory" })
		}, 24, "prevHash differs"},
		{"event deleted", func(t *testing.T, db *DB, l *Log) {
			if err := db.Pebble().Delete(EventKey(3, 30), pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, 30, "event missing"},
		{"first event deleted", func(t *testing.T, db *DB, l *Log) {
			if err := db.Pebble().Delete(EventKey(3, 1), pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, 1, "event missing"},
		{"event moved to another sequence number", func(t *testing.T, db *DB, l *Log) {
			v, closer, _ := db.Pebble().Get(EventKey(3, 40))
			v = append([]byte(nil), v...)
			closer.Close()
			if err := db.Pebble().Set(EventKey(3, 41), v, pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, 41, "holds sequence number 40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, l := build(t)
			tt.tamper(t, db, l)
			var calls []uint64
			got, err := l.Verify(context.Background(), func(n uint64) { calls = append(calls, n) })
			if tt.seq == 0 {
				if err != nil || got != n {
					t.Fatalf("Verify = %d, %v; want %d, nil", got, err, n)
				}
				if len(calls) == 0 || calls[len(calls)-1] != n {
					t.Fatalf("progress calls %v do not end at %d", calls, n)
				}
				return
			}
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify error = %v, want *ChainError", err)
			}
			if ce.Seq != tt.seq || ce.Dataset != 3 || got != tt.seq-1 {
				t.Fatalf("Verify = %d, %v; want failure at event %d after %d verified", got, err, tt.seq, tt.seq-1)
			}
			if !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("reason %q does not say %q", ce.Reason, tt.reason)
			}
			if ce.Expected == ce.Found && tt.reason != "holds sequence number 40" {
				t.Errorf("expected and found hashes are equal: %x", ce.Expected)
			}
			if ce.ErrorCode() != CodeChainBroken {
				t.Errorf("code %q", ce.ErrorCode())
			}
		})
	}
	t.Run("other datasets unaffected", func(t *testing.T) {
		db, l := build(t)
		if err := db.Pebble().Delete(EventKey(3, 30), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Verify(context.Background(), nil); err == nil {
			t.Fatal("deletion not detected")
		}
		if got, err := db.Log(4).Verify(context.Background(), nil); err != nil || got != 5 {
			t.Fatalf("dataset 4: %d, %v", got, err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		db := openMem(t)
		l := db.Log(1)
		appendN(t, db, l, 10000, 5000, pebble.NoSync, t0)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := l.Verify(ctx, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
	})
}

// TestReopenAfterCrash simulates power loss on an in-memory filesystem: the
// last batches are committed without sync, and the crash keeps a random part
// of the unsynced data. After reopening, Head must name an event that is
// present, every synced event must be there, and the chain must verify.
func TestReopenAfterCrash(t *testing.T) {
	for round := range 8 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			db, err := Open("db", &Options{FS: fs, CacheSize: 4 << 20})
			if err != nil {
				t.Fatal(err)
			}
			l := db.Log(1)
			appendN(t, db, l, 200, 50, pebble.Sync, t0)   // durable
			appendN(t, db, l, 300, 10, pebble.NoSync, t0) // may be lost
			rng := rand.New(rand.NewPCG(uint64(round), 1))
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
			db.Close()

			db, err = Open("db", &Options{FS: crashed, CacheSize: 4 << 20})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer db.Close()
			l = db.Log(1)
			seq, hash, err := l.Head()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("head after the crash: %d (200 synced, 500 written)", seq)
			if seq < 200 || seq > 500 {
				t.Fatalf("head %d: synced events lost or phantom events", seq)
			}
			ev, err := l.Get(seq)
			if err != nil || ev.Hash != hash {
				t.Fatalf("head event %d: %v", seq, err)
			}
			n, err := l.Verify(context.Background(), nil)
			if err != nil || n != seq {
				t.Fatalf("Verify = %d, %v; want %d", n, err, seq)
			}
			if _, ok, _ := l.LookupTx(ev.TxID); !ok {
				t.Fatalf("idempotency entry of the head event is missing")
			}
			// Appending continues the chain.
			appendN(t, db, l, 5, 5, pebble.Sync, t0.Add(time.Hour))
			if n, err := l.Verify(context.Background(), nil); err != nil || n != seq+5 {
				t.Fatalf("after appending: %d, %v", n, err)
			}
		})
	}
}
