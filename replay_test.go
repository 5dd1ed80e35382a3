package vellum

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/eventlog"
)

// TestReplay copies a dataset as of several points and checks each copy:
// the same events (sequence numbers, transaction ids, hashes) as the
// source's prefix, documents equal to the source's export at that point,
// the acl mode of the time, a verifying chain, and read-only refusal of
// every write.
func TestReplay(t *testing.T) {
	e := newTestEngine(t, "blog")
	ctx := context.Background()
	var txids []string
	for i := range 40 {
		body := fmt.Sprintf(`{"mutations":[{"createOrReplace":{"_id":"post-%d","_type":"post","n":%d,"body":%q}}]}`, i%7, i, strings.Repeat("x", 50*i))
		if i%9 == 8 {
			body = fmt.Sprintf(`{"mutations":[{"delete":{"id":"post-%d"}}]}`, (i+1)%7)
		}
		txids = append(txids, mustTransact(t, e, "blog", body).TransactionID)
	}
	if _, err := e.SetDatasetACL(ctx, SystemPrincipal, "blog", "private"); err != nil {
		t.Fatal(err)
	}
	mustTransact(t, e, "blog", `{"mutations":[{"create":{"_id":"late","_type":"post"}}]}`)
	head := headSeq(t, e, "blog")

	for _, c := range []struct {
		to      Point
		wantSeq uint64
		acl     string
	}{
		{Point{Seq: 1}, 1, "public"},
		{Point{TxID: txids[20]}, 21, "public"},
		{Point{}, head, "private"},
	} {
		t.Run(c.to.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "copy")
			res, err := e.ReplayTo(ctx, "blog", SystemPrincipal, c.to, dir, ReplayOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if last, err := e.dataset("blog"); err != nil || res.Events != c.wantSeq || res.ACL != c.acl || !headHashIs(last, c.wantSeq, res.HeadHash) {
				t.Errorf("copied %d events with acl %q, want %d and %q", res.Events, res.ACL, c.wantSeq, c.acl)
			}
			cp, err := Open(filepath.Join(dir, "store"), Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer cp.Close()
			src, _ := e.dataset("blog")
			dst, err := cp.dataset("blog")
			if err != nil {
				t.Fatal(err)
			}
			for seq := uint64(1); seq <= c.wantSeq; seq++ {
				a, err1 := src.log.Get(seq)
				b, err2 := dst.log.Get(seq)
				if err1 != nil || err2 != nil {
					t.Fatalf("event %d: %v, %v", seq, err1, err2)
				}
				if a.TxID != b.TxID || a.Hash != b.Hash || a.PrevHash != b.PrevHash || !a.Time.Equal(b.Time) {
					t.Fatalf("event %d differs: %s %x / %s %x", seq, a.TxID, a.Hash, b.TxID, b.Hash)
				}
			}
			if _, err := dst.log.Get(c.wantSeq + 1); err == nil {
				t.Errorf("the copy holds event %d, beyond the point", c.wantSeq+1)
			}
			if n, err := cp.Verify(ctx, "blog", nil); err != nil || n != c.wantSeq {
				t.Errorf("Verify of the copy: %d, %v", n, err)
			}
			want, _, err := exportIDs(t, e, "blog", SystemPrincipal, ExportOptions{At: Point{Seq: c.wantSeq}, System: true})
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := exportIDs(t, cp, "blog", SystemPrincipal, ExportOptions{System: true})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("copy holds %v, source at the point %v", got, want)
			}
			for _, id := range got {
				a, _, _ := src.store.AtSeq(id, c.wantSeq)
				b, _, _ := dst.store.Get(id, 0)
				if string(a) != string(b) {
					t.Errorf("%s: copy %s, source at the point %s", id, b, a)
				}
			}
			// The copy refuses every write, and says why.
			for what, err := range map[string]error{
				"transact": func() error {
					_, err := cp.Transact(ctx, "blog", SystemPrincipal, []byte(`{"mutations":[{"create":{"_id":"x","_type":"t"}}]}`))
					return err
				}(),
				"create dataset": func() error { _, err := cp.CreateDataset(ctx, SystemPrincipal, "other", ""); return err }(),
				"create token": func() error {
					_, _, err := cp.CreateToken(ctx, SystemPrincipal, "ci", "editor", "")
					return err
				}(),
				"acl": func() error { _, err := cp.SetDatasetACL(ctx, SystemPrincipal, "blog", "public"); return err }(),
			} {
				if ve := AsError(err); ve == nil || ve.Code != CodeReadOnly || !strings.Contains(ve.Description, "read-only") {
					t.Errorf("%s on the copy: %v, want a readOnly error", what, err)
				}
			}
			// A dry run writes nothing and is allowed.
			if _, err := cp.Transact(ctx, "blog", SystemPrincipal, []byte(`{"dryRun":true,"mutations":[{"create":{"_id":"x","_type":"t"}}]}`)); err != nil {
				t.Errorf("dry run on the copy: %v", err)
			}
		})
	}
}

func TestReplayBadInput(t *testing.T) {
	e := newTestEngine(t, "blog")
	ctx := context.Background()
	mustTransact(t, e, "blog", `{"mutations":[{"create":{"_id":"a","_type":"t"}}]}`)
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "keep.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		p    *authz.Principal
		to   Point
		dir  string
		code string
	}{
		{"non-empty dir", SystemPrincipal, Point{}, full, CodeDirectoryNotEmpty},
		{"unknown transaction", SystemPrincipal, Point{TxID: "nope"}, "", CodeUnknownTransaction},
		{"beyond the head", SystemPrincipal, Point{Seq: 9}, "", CodeNoSuchEvent},
		{"not an administrator", &authz.Principal{ID: "alice", Authenticated: true, Roles: []authz.RoleAssignment{{Role: authz.RoleEditor}}}, Point{}, "", CodePermissionDenied},
	} {
		dir := c.dir
		if dir == "" {
			dir = filepath.Join(t.TempDir(), "copy")
		}
		_, err := e.ReplayTo(ctx, "blog", c.p, c.to, dir, ReplayOptions{})
		if ve := AsError(err); ve.Code != c.code {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
		if c.dir == "" {
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: the directory was left behind (%v)", c.name, err)
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(full, "keep.txt")); err != nil || string(b) != "mine" {
		t.Errorf("the non-empty directory was touched: %q, %v", b, err)
	}
}

// TestReplayCatchesAlteredLog: an event altered in the source's Pebble
// store stops the replay with hashChainBroken, and nothing is left.
func TestReplayCatchesAlteredLog(t *testing.T) {
	e := newTestEngine(t, "blog")
	ctx := context.Background()
	for i := range 5 {
		mustTransact(t, e, "blog", fmt.Sprintf(`{"mutations":[{"create":{"_id":"d%d","_type":"t","v":"original"}}]}`, i))
	}
	d, _ := e.dataset("blog")
	key := eventlog.EventKey(d.num, 3)
	v, closer, err := e.pebbleDB().Get(key)
	if err != nil {
		t.Fatal(err)
	}
	altered := []byte(strings.Replace(string(v), "original", "tampered", 1))
	closer.Close()
	if string(altered) == string(v) {
		t.Fatal("the event does not hold the document text")
	}
	if err := e.pebbleDB().Set(key, altered, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "copy")
	_, err = e.ReplayTo(ctx, "blog", SystemPrincipal, Point{}, dir, ReplayOptions{})
	if ve := AsError(err); ve.Code != "hashChainBroken" || !strings.Contains(ve.Description, "event 3") {
		t.Errorf("replay of an altered log: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory was left behind (%v)", err)
	}
}

// headHashIs reports whether hash is the hex hash of d's event seq.
func headHashIs(d *dataset, seq uint64, hash string) bool {
	ev, err := d.log.Get(seq)
	return err == nil && fmt.Sprintf("%x", ev.Hash) == hash
}

// TestReplayStoresWhatTheEngineStores replays a log whose documents change
// by diffs and deletions, with transaction ids out of order, with tiny batches, tables and memory for held
// documents (so that every path of the bulk load runs: many batches, many
// ingested tables, held documents written and read back mid-way), and
// compares every key and value of the copy's dataset with the source's:
// events, transaction and time indexes, current documents and history.
func TestReplayStoresWhatTheEngineStores(t *testing.T) {
	defer func(b, h, tb int) { replayBatchBytes, replayHold, replayTableBytes = b, h, tb }(replayBatchBytes, replayHold, replayTableBytes)
	replayBatchBytes, replayHold, replayTableBytes = 2<<10, 4<<10, 8<<10

	e := newTestEngine(t, "blog")
	ctx := context.Background()
	long := strings.Repeat("a long paragraph of text, ", 40)
	for i := range 120 {
		id := fmt.Sprintf("post-%d", i%9)
		body := fmt.Sprintf(`{"mutations":[{"createOrReplace":{"_id":%q,"_type":"post","body":%q,"tags":["a","b"]}}]}`, id, long)
		switch {
		case i >= 9 && i%5 == 0:
			body = fmt.Sprintf(`{"mutations":[{"createIfNotExists":{"_id":%q,"_type":"post","body":%q}},{"patch":{"id":%q,"set":{"n":%d,"title":"edit %d"}}}]}`, id, long, id, i, i)
		case i%11 == 10:
			body = fmt.Sprintf(`{"mutations":[{"delete":{"id":%q}}]}`, id)
		}
		// Transaction ids the client chose, sorting before and after the
		// engine's ULIDs: their index entries arrive out of key order.
		switch i {
		case 30, 60:
			body = fmt.Sprintf(`{"transactionId":"00-client-%d",%s`, i, body[1:])
		case 90:
			body = fmt.Sprintf(`{"transactionId":"zz-client-%d",%s`, i, body[1:])
		}
		if _, err := e.Transact(ctx, "blog", SystemPrincipal, []byte(body)); err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
	}
	src, _ := e.dataset("blog")
	diffs := 0
	if err := src.log.Scan(ctx, 1, func(ev *eventlog.Event) error {
		for _, ef := range ev.Effects {
			if ef.Diff != nil {
				diffs++
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diffs == 0 {
		t.Fatal("the fixture has no diff effects: the test would not exercise previous versions")
	}

	dir := filepath.Join(t.TempDir(), "copy")
	res, err := e.ReplayTo(ctx, "blog", SystemPrincipal, Point{}, dir, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "store", "*.sst"))
	if len(tables) < 4 {
		t.Errorf("the copy has %d tables; tiny limits should give many", len(tables))
	}
	cp, err := Open(filepath.Join(dir, "store"), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	dst, _ := cp.dataset("blog")
	if n, err := cp.Verify(ctx, "blog", nil); err != nil || n != res.Events {
		t.Errorf("Verify of the copy: %d, %v", n, err)
	}
	for _, space := range []byte{eventlog.SpaceEvents, eventlog.SpaceTx, eventlog.SpaceTime, eventlog.SpaceDocs, eventlog.SpaceHistory} {
		want := keyspace(t, e.pebbleDB(), src.num, space)
		got := keyspace(t, cp.pebbleDB(), dst.num, space)
		if len(want) == 0 {
			t.Errorf("keyspace %c of the source is empty", space)
		}
		if len(got) != len(want) {
			t.Errorf("keyspace %c: the copy has %d entries, the source %d", space, len(got), len(want))
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("keyspace %c, entry %d: copy %.120q, source %.120q", space, i, got[i], want[i])
				break
			}
		}
	}
}

// keyspace returns the entries of keyspace space of dataset num, each as
// its key without the dataset prefix, "=", and its value.
func keyspace(t *testing.T, db *pebble.DB, num uint32, space byte) []string {
	t.Helper()
	prefix := eventlog.KeyPrefix(num, space)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: eventlog.KeyUpperBound(num, space)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, string(it.Key()[len(prefix):])+"="+string(it.Value()))
	}
	return out
}

// TestPageEvents checks the paging loop against a source whose pages end at
// a byte budget, so that some pages come back shorter than asked for: every
// event is emitted once and in order, no more than pageWindow requests are
// in flight at a time, several are in flight at once, and an error of the
// source or of emit ends the loop with that error.
func TestPageEvents(t *testing.T) {
	// Events 1..n; event i is i%13+1 bytes long and pages hold at most
	// budget bytes (but at least one event).
	const n, budget = 500, 40
	event := func(i uint64) []byte { return []byte(strings.Repeat(string(rune('a'+i%26)), int(i%13+1))) }
	page := func(after uint64, limit int) *EventsPage {
		p := &EventsPage{To: n}
		size := 0
		for i := after + 1; i <= n && len(p.Events) < limit; i++ {
			ev := event(i)
			if len(p.Events) > 0 && size+len(ev) > budget {
				break
			}
			p.Events = append(p.Events, ev)
			size += len(ev)
		}
		return p
	}
	var mu sync.Mutex
	inFlight, most, calls, short := 0, 0, 0, 0
	next := func(ctx context.Context, after uint64, limit int) (*EventsPage, error) {
		mu.Lock()
		inFlight++
		calls++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(time.Millisecond) // long enough for the others to be asked for
		p := page(after, limit)
		mu.Lock()
		inFlight--
		if len(p.Events) < limit {
			short++
		}
		mu.Unlock()
		return p, nil
	}
	var got uint64
	err := PageEvents(context.Background(), page(0, 1<<30), next, func(raw []byte) error {
		got++
		if want := event(got); string(raw) != string(want) {
			return fmt.Errorf("event %d is %q, want %q", got, raw, want)
		}
		return nil
	})
	if err != nil || got != n {
		t.Fatalf("PageEvents emitted %d events, err %v; want %d", got, err, n)
	}
	if most > pageWindow || most < 2 {
		t.Errorf("at most %d requests were in flight at once, want 2 to %d", most, pageWindow)
	}
	if short == 0 {
		t.Errorf("no page came back short in %d requests: the test does not exercise the rest of a range", calls)
	}
	t.Logf("%d requests, %d short, at most %d at once", calls, short, most)

	boom := errors.New("boom")
	failing := func(ctx context.Context, after uint64, limit int) (*EventsPage, error) {
		if after >= 100 {
			return nil, boom
		}
		return next(ctx, after, limit)
	}
	if err := PageEvents(context.Background(), page(0, 1<<30), failing, func([]byte) error { return nil }); !errors.Is(err, boom) {
		t.Errorf("a failing source: err %v, want %v", err, boom)
	}
	count := 0
	stop := func([]byte) error {
		if count++; count == 50 {
			return boom
		}
		return nil
	}
	if err := PageEvents(context.Background(), page(0, 1<<30), next, stop); !errors.Is(err, boom) {
		t.Errorf("a failing emit: err %v, want %v", err, boom)
	}
	empty := func(ctx context.Context, after uint64, limit int) (*EventsPage, error) {
		return &EventsPage{To: n}, nil
	}
	if err := PageEvents(context.Background(), page(0, 1<<30), empty, func([]byte) error { return nil }); err == nil {
		t.Error("a source that sends an empty page before the end: no error")
	}
	toomany := func(ctx context.Context, after uint64, limit int) (*EventsPage, error) {
		return page(after, limit+1), nil
	}
	if err := PageEvents(context.Background(), page(0, 1<<30), toomany, func([]byte) error { return nil }); err == nil {
		t.Error("a source that sends more events than asked for: no error")
	}
}

// TestEventsPageFramed checks that a framed page holds, after its header
// room, exactly the events of the unframed page of the same request, each
// preceded by its length, for pages bounded by bytes, by a limit and by
// the end, and for an empty page.
func TestEventsPageFramed(t *testing.T) {
	e := newTestEngine(t, "ds")
	for i := range 60 {
		// Events of growing size, so that the buffer's guess from the
		// first event is too small and must grow.
		mustTransact(t, e, "ds", fmt.Sprintf(`{"mutations":[{"create":{"_id":"d%d","_type":"t","s":%q}}]}`, i, strings.Repeat("x", i*40)))
	}
	ctx := context.Background()
	head := headSeq(t, e, "ds")
	for _, o := range []EventsOptions{
		{},
		{After: 10, Limit: 7},
		{After: 3, MaxBytes: 2000},
		{After: 50, MaxBytes: 1},
		{After: head},
	} {
		plain, err := e.EventsPage(ctx, "ds", SystemPrincipal, o)
		if err != nil {
			t.Fatal(err)
		}
		o.Framed, o.HeaderRoom = true, 100
		framed, err := e.EventsPage(ctx, "ds", SystemPrincipal, o)
		if err != nil {
			t.Fatal(err)
		}
		if framed.Count != len(plain.Events) || framed.More != plain.More || framed.To != plain.To {
			t.Errorf("%+v: framed page of %d events (more %v, to %d), plain %d (more %v, to %d)", o, framed.Count, framed.More, framed.To, len(plain.Events), plain.More, plain.To)
		}
		var want []byte
		want = append(want, make([]byte, 100)...)
		for _, ev := range plain.Events {
			want = binary.AppendUvarint(want, uint64(len(ev)))
			want = append(want, ev...)
		}
		if len(plain.Events) > 0 && !bytes.Equal(framed.Framed, want) {
			t.Errorf("%+v: framed bytes differ from the plain page's events framed", o)
		}
		if len(plain.Events) == 0 && len(framed.Framed) != 0 && len(framed.Framed) != 100 {
			t.Errorf("%+v: an empty framed page holds %d bytes", o, len(framed.Framed))
		}
	}
}
