package vellum

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/eventlog"
	"github.com/vellum-db/vellum/projection"
)

// CodeReadOnly is the error of a write to an engine opened with
// Options.ReadOnly (vellumd --read-only), such as a copy made by Replay.
const CodeReadOnly = "readOnly"

// writable returns a readOnly error saying that action is refused when the
// engine is read-only.
func (e *Engine) writable(action string) error {
	if !e.readOnly {
		return nil
	}
	return errorf(CodeReadOnly, "cannot %s: the store is read-only (vellumd --read-only serves a copy made by `vellum replay`, which refuses every write)", action)
}

// Replay: a read-only copy of a dataset as of a point (docs/export-replay.md).
//
// The source engine hands out its log verbatim, page by page (EventsPage);
// Replay writes those events, unchanged, into a new store in a directory
// and rebuilds the projections from them. The copy's log is therefore the
// source's prefix, event for event and hash for hash: its chain verifies
// and its head hash equals the source's hash of the same event.

// CodeDirectoryNotEmpty is the error of a replay into a directory that
// already holds files.
const CodeDirectoryNotEmpty = "directoryNotEmpty"

// EventsOptions say which events EventsPage returns.
type EventsOptions struct {
	// To is the last event wanted; the zero Point is the head.
	To Point
	// ToSeq, when not 0, is To as resolved by an earlier page; it takes
	// precedence over To, so that every page ends at the same event.
	ToSeq uint64
	// After is the sequence number of the last event already received.
	After uint64
	// MaxBytes ends a page once its events add up to this many bytes,
	// counting eventFraming bytes more for each (at least one event is
	// always included); 0 means 4 MiB.
	MaxBytes int
	// Limit, when not 0, ends a page after this many events: a client
	// that asks for several pages at once (PageEvents) knows where each
	// begins.
	Limit int
	// Framed asks for the events in one buffer, EventsPage.Framed, ready
	// to be sent: HeaderRoom free bytes (for the transport's header),
	// then each event preceded by its length as a uvarint. Events is
	// then empty. A transport that sends the page this way copies the
	// events once, from the log into the message.
	Framed     bool
	HeaderRoom int
}

// EventsPage is one page of a dataset's log.
type EventsPage struct {
	Dataset string `json:"dataset"`
	// To is the sequence number of the last event of the whole replay.
	To uint64 `json:"to"`
	// Head is the log's head when the page was read.
	Head uint64 `json:"head"`
	// ACL is the dataset's acl mode as it was at event To.
	ACL string `json:"aclMode"`
	// Events are encoded events (eventlog's encoding, hashes included),
	// exactly as the log stores them, from After+1 on.
	Events [][]byte `json:"events"`
	More   bool     `json:"more"`
	// Framed holds the events when EventsOptions.Framed was set (see
	// there), nil for a page without events; Count is their number.
	Framed []byte `json:"-"`
	Count  int    `json:"-"`
}

// eventFraming is what EventsPage counts against MaxBytes for each event
// besides its bytes: room for a transport's framing (a length).
const eventFraming = 10

// EventsPage returns the next page of dataset name's log up to opts.To, for
// a replay. Only an administrator of the dataset may read it: the log holds
// every version of every document, and it cannot be filtered without
// breaking its hash chain.
func (e *Engine) EventsPage(ctx context.Context, name string, p *authz.Principal, opts EventsOptions) (*EventsPage, error) {
	d, err := e.dataset(name)
	if err != nil {
		return nil, err
	}
	if !p.HasRole(authz.RoleAdministrator, name) {
		return nil, errorf(CodePermissionDenied, "%s may not read the log of dataset %q: replaying it needs the administrator role, since the log holds every version of every document", describe(p), name)
	}
	to, head := opts.ToSeq, uint64(0)
	if to == 0 {
		if to, head, err = d.resolve(ctx, opts.To); err != nil {
			return nil, err
		}
	} else {
		if err := d.w.readBarrier(ctx); err != nil {
			return nil, err
		}
		if head, _, err = d.log.Head(); err != nil {
			return nil, err
		}
		if to > head {
			return nil, errorf(CodeNoSuchEvent, "dataset %q has no event %d: its log ends at event %d", name, to, head)
		}
	}
	page := &EventsPage{Dataset: name, To: to, Head: head, Events: [][]byte{}}
	if page.ACL, err = e.aclAt(d, to); err != nil {
		return nil, err
	}
	if opts.After >= to {
		return page, nil
	}
	max := opts.MaxBytes
	if max <= 0 {
		max = 4 << 20
	}
	it, err := e.db.Pebble().NewIter(&pebble.IterOptions{
		LowerBound: eventlog.EventKey(d.num, opts.After+1),
		UpperBound: eventlog.EventKey(d.num, to+1),
	})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	// The events are copied into one buffer, then sliced (or framed). It
	// is allocated at about the page's size once the first event is read,
	// guessing that the events left are as large as it: growing the buffer
	// by appends cost as much as reading the events.
	left := to - opts.After
	if opts.Limit > 0 {
		left = min(left, uint64(opts.Limit))
	}
	var buf []byte
	var ends []int
	size, count := 0, 0
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		if count > 0 && (size+len(v)+eventFraming > max || count == opts.Limit) {
			page.More = true
			break
		}
		if buf == nil {
			guess := min(uint64(max), left*uint64(len(v)+eventFraming), 64<<20)
			buf = make([]byte, opts.HeaderRoom, opts.HeaderRoom+int(guess)+len(v)/4+64)
		}
		if opts.Framed {
			buf = binary.AppendUvarint(buf, uint64(len(v)))
			buf = append(buf, v...)
		} else {
			buf = append(buf, v...)
			ends = append(ends, len(buf))
		}
		size += len(v) + eventFraming
		count++
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if opts.Framed {
		page.Framed, page.Count = buf, count
		return page, nil
	}
	start := 0
	for _, end := range ends {
		page.Events = append(page.Events, buf[start:end:end])
		start = end
	}
	page.Count = count
	return page, nil
}

// aclAt returns d's acl mode as of its event seq, from the system dataset's
// record of d at that time (the current mode when there is none).
func (e *Engine) aclAt(d *dataset, seq uint64) (string, error) {
	if seq == 0 {
		return d.info.ACL, nil
	}
	ev, err := d.log.Get(seq)
	if err != nil {
		return "", err
	}
	raw, ok, err := e.system.store.AtTime(datasetDocPrefix+d.name, ev.Time)
	if err != nil || !ok {
		return d.info.ACL, err
	}
	var r datasetRecord
	if err := json.Unmarshal(raw, &r); err != nil || r.ACL == "" {
		return d.info.ACL, nil
	}
	return r.ACL, nil
}

// ReplayResult describes a copy made by Replay.
type ReplayResult struct {
	Dataset string `json:"dataset"`
	Dir     string `json:"dir"`
	ACL     string `json:"aclMode"`
	// Events is the number of events copied: the copy's log holds events 1
	// to Events of the source.
	Events uint64 `json:"events"`
	// HeadHash is the hash of the copy's last event (hex), equal to the
	// source's hash of the same event; empty for an empty copy.
	HeadHash string `json:"headHash,omitempty"`
}

// ReplayOptions configure Replay.
type ReplayOptions struct {
	// Logger receives the copy's engine logs; nil discards them.
	Logger *slog.Logger
	// Progress, if not nil, is called with the number of events written so
	// far, every 65536 events and after the last.
	Progress func(n uint64)
	// Events, when not 0, is the number of events the source will yield
	// (the first page's To). Replay then commits smaller batches as the end
	// nears, so that the last commit, which nothing overlaps, is short.
	Events uint64
}

// EventSource calls emit with each encoded event of a replay, in order,
// and returns emit's first error. emit may keep the slices it is passed
// until the replay ends, so the source must not change them.
type EventSource func(ctx context.Context, emit func(raw []byte) error) error

// Bulk-load settings of Replay (variables so that tests can make them
// small). replayBatchBytes is the size at which a batch (transaction-id and
// history entries) is committed (1 MiB batches cost 10-15 % more CPU per
// event than 8 MiB ones); replayHold about the memory that holds
// current documents before they are written (see projection.Loader);
// replayTableBytes the size of one table of events or time-index entries
// (see tableWriter).
var (
	replayBatchBytes = 8 << 20
	replayHold       = 64 << 20
	replayTableBytes = 64 << 20
)

// replayMemTable is the memtable size of the store while Replay fills it.
const replayMemTable = 64 << 20

// Replay builds in dir a new store holding one dataset, name (acl mode
// acl), whose log is exactly the events src yields (verified as they come:
// contiguous sequence numbers from 1, each PrevHash the previous Hash and
// each Hash that of the event's contents, so the copy's chain verifies),
// with its projections rebuilt from them. dir must not exist or be empty; the store is dir/store, the
// layout vellumd --data dir expects, so `vellumd --data dir --read-only`
// serves the copy. On any failure what Replay created is removed.
func Replay(ctx context.Context, dir, name, acl string, src EventSource, opts ReplayOptions) (res *ReplayResult, err error) {
	if err := checkEmptyDir(dir); err != nil {
		return nil, err
	}
	created := false
	if _, statErr := os.Stat(dir); errors.Is(statErr, fs.ErrNotExist) {
		created = true
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("replay: creating %s: %w", dir, err)
	}
	storeDir := filepath.Join(dir, "store")
	defer func() {
		if err == nil {
			return
		}
		os.RemoveAll(storeDir)
		if created {
			os.Remove(dir)
		}
	}()
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	// The dataset is registered as a new store registers any dataset: a
	// transaction of the copy's own system dataset.
	eng, err := Open(storeDir, Options{Logger: logger})
	if err != nil {
		return nil, err
	}
	if _, err := eng.CreateDataset(ctx, SystemPrincipal, name, acl); err != nil {
		eng.Close()
		return nil, err
	}
	num := eng.byName[name].num
	if err := eng.Close(); err != nil {
		return nil, err
	}

	res = &ReplayResult{Dataset: name, Dir: dir, ACL: acl}
	if err := appendEvents(ctx, storeDir, num, src, res, opts); err != nil {
		return nil, err
	}

	return res, nil
}

// appendEvents writes src's events, verbatim, into the log of dataset num
// of the store in storeDir and builds the dataset's projections from them
// in the same pass.
//
// Each event is decoded once: the decoding checks that the bytes are the
// canonical encoding of a valid event, the hash is checked on the bytes as
// received (eventlog.ComputeHash), and the bytes are stored as they are:
// the event key, its transaction-id and time-index entries (what
// eventlog.Log.Append writes), and what projection.Loader derives from the
// decoded effects (history entries; current documents at the end). Batches
// are committed without sync, the last one with sync, which makes every
// earlier one durable: the copy is only valid once complete, and Replay
// removes it on failure.
//
// Two goroutines share the work, so that a replay uses two cores: this one
// runs src and checks each event (decoding, chain and hash), and hands
// them on in chunks to a writer goroutine (replayWriter), which stores
// them. The first error of either stops both.
func appendEvents(ctx context.Context, storeDir string, num uint32, src EventSource, res *ReplayResult, opts ReplayOptions) error {
	progress := opts.Progress
	db, err := eventlog.Open(storeDir, &eventlog.Options{
		MemTableSize:          replayMemTable,
		L0CompactionThreshold: 8,
		Logger:                slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := projection.Open(db, num)
	if err != nil {
		return err
	}
	pdb := db.Pebble()
	// Events, time-index entries and (mostly) transaction ids come in key
	// order: they go straight into tables that are ingested at the end.
	tablesDir := filepath.Join(storeDir, "replay-tables")
	if err := os.Mkdir(tablesDir, 0o700); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer os.RemoveAll(tablesDir)
	w := &replayWriter{
		num:      num,
		load:     store.NewLoader(),
		events:   newTableWriter(pdb, tablesDir, "events", replayTableBytes),
		times:    newTableWriter(pdb, tablesDir, "time", replayTableBytes),
		txs:      newTableWriter(pdb, tablesDir, "tx", replayTableBytes),
		progress: progress,
		total:    opts.Events,
		// One batch is filled while the previous one commits.
		pipe: projection.NewCommitPipeline(pdb, replayBatchBytes+replayBatchBytes/4, 2*replayBatchBytes),
	}
	defer w.abort()
	w.b = w.pipe.Batch()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	chunks := make(chan []replayItem, 8)
	written := make(chan error, 1)
	go func() {
		err := w.writeAll(chunks)
		if err != nil {
			cancel(err) // stops src and the checks
		}
		written <- err
	}()
	var prev [32]byte
	chunk := make([]replayItem, 0, replayChunk)
	send := func() error {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		select {
		case chunks <- chunk:
			chunk = make([]replayItem, 0, replayChunk)
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	err = src(ctx, func(raw []byte) error {
		want := res.Events + 1
		ev, err := eventlog.DecodeEvent(raw)
		if err != nil {
			return fmt.Errorf("replay: event %d as received: %w", want, err)
		}
		if ev.Seq != want {
			return &Error{Code: "hashChainBroken", Description: fmt.Sprintf("replay: expected event %d, received event %d", want, ev.Seq)}
		}
		if ev.PrevHash != prev {
			return &Error{Code: "hashChainBroken", Description: fmt.Sprintf("replay: event %d's prevHash %x is not the hash %x of event %d", want, ev.PrevHash, prev, want-1)}
		}
		if err := ev.Validate(); err != nil {
			return fmt.Errorf("replay: event %d as received: %w", want, err)
		}
		// The decoding accepted only a canonical encoding, whose last 32
		// bytes are the hash: the bytes are exactly what Append would store.
		if h := eventlog.ComputeHash(prev, raw[:len(raw)-len(ev.Hash)]); h != ev.Hash {
			return &Error{Code: "hashChainBroken", Description: fmt.Sprintf("replay: event %d's hash %x is not the hash %x of its contents: the source log was altered (run `vellum verify`)", want, ev.Hash, h)}
		}
		prev = ev.Hash
		res.Events = want
		chunk = append(chunk, replayItem{ev: ev, raw: raw})
		if len(chunk) == replayChunk {
			return send()
		}
		return nil
	})
	if err == nil && len(chunk) > 0 {
		err = send()
	}
	close(chunks)
	// The writer's error, when it failed, is the cause of src's.
	if werr := <-written; werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	if err := w.finish(ctx, pdb); err != nil {
		return err
	}
	if progress != nil {
		progress(res.Events)
	}
	if res.Events > 0 {
		res.HeadHash = hex.EncodeToString(prev[:])
	}
	// Every event was checked as it came (sequence, prevHash, hash); the
	// log's head must now be the last of them.
	if seq, hash, err := db.Log(num).Head(); err != nil {
		return err
	} else if seq != res.Events || hash != prev {
		return fmt.Errorf("replay: the copy's log ends at event %d (%x), not at event %d (%x)", seq, hash, res.Events, prev)
	}
	return nil
}

// replayItem is a checked event of a replay and its bytes as received.
type replayItem struct {
	ev  *eventlog.Event
	raw []byte
}

// replayChunk is the number of events handed from the checks to the writer
// at a time.
const replayChunk = 256

// replayWriter stores the checked events of a replay (see appendEvents).
type replayWriter struct {
	num                uint32
	load               *projection.Loader
	events, times, txs *tableWriter
	pipe               *projection.CommitPipeline
	b                  *pebble.Batch
	progress           func(uint64)
	total              uint64 // the events expected, 0 if unknown
	tail               bool   // the last replayTailEvents events are being written
	seqBE              [8]byte
}

// replayTailEvents is how many events before the end (when it is known)
// a replay starts to commit smaller batches and cuts its tables at
// replayTailTableBytes. What comes last is waited for alone: the last
// commit took 75-88 ms of a 100,000-event replay at 8 MiB (a commit copies
// each key into the memtable, about a microsecond each), and closing the
// last table, which syncs it, 57-92 ms when it held all 100,000 events.
// Smaller batches throughout would cost more CPU (1 MiB ones 10-15 % per
// event), so a batch's limit falls with the events left, to
// replayTailBytesPerEvent for each (about what an event adds to a batch),
// between replayTailMinBatch and replayTailMaxBatch: the last commit holds
// a few thousand keys.
const (
	replayTailEvents        = 32768
	replayTailBytesPerEvent = 32
	replayTailMinBatch      = 64 << 10
	replayTailMaxBatch      = 1 << 20
	replayTailTableBytes    = 2 << 20
)

// writeAll stores the events of every chunk, in order, until chunks is
// closed or a write fails.
func (w *replayWriter) writeAll(chunks <-chan []replayItem) error {
	for chunk := range chunks {
		for _, it := range chunk {
			if err := w.write(it.ev, it.raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// write stores one event: its bytes under its key, its transaction-id and
// time-index entries, and its effects on the projections.
func (w *replayWriter) write(ev *eventlog.Event, raw []byte) error {
	seq := ev.Seq
	if err := w.events.set(eventlog.EventKey(w.num, seq), raw); err != nil {
		return err
	}
	// Times do not decrease in a log the engine wrote, and the transaction
	// ids it makes (ULIDs) mostly increase; an entry out of order (a time
	// that went back, a transaction id the client chose) goes through the
	// batch instead.
	binary.BigEndian.PutUint64(w.seqBE[:], seq)
	var err error
	if key := eventlog.TxKey(w.num, ev.TxID); w.txs.accepts(key) {
		err = w.txs.set(key, w.seqBE[:])
	} else {
		err = w.b.Set(key, w.seqBE[:], nil)
	}
	if err != nil {
		return err
	}
	if key := eventlog.TimeKey(w.num, ev.Time, seq); w.times.accepts(key) {
		err = w.times.set(key, nil)
	} else {
		err = w.b.Set(key, nil, nil)
	}
	if err != nil {
		return err
	}
	if err := w.load.Apply(w.b, ev); err != nil {
		return err
	}
	if w.progress != nil && seq%65536 == 0 {
		w.progress(seq)
	}
	if w.load.HeldBytes() >= replayHold {
		// Write the held documents and wait for their commit: the database
		// then has every version a later diff may need.
		if err := w.load.Flush(w.b); err != nil {
			return err
		}
		if err := w.flush(); err != nil {
			return err
		}
		return w.pipe.Wait()
	}
	limit := replayBatchBytes
	if w.total > 0 && seq+replayTailEvents > w.total {
		left := int(w.total - seq)
		limit = min(limit, max(replayTailMinBatch, min(replayTailMaxBatch, left*replayTailBytesPerEvent)))
		if !w.tail {
			w.tail = true
			for _, t := range w.tables() {
				t.setMaxBytes(replayTailTableBytes)
			}
		}
	}
	if w.b.Len() >= limit {
		return w.flush()
	}
	return nil
}

// tables returns the writer's tables: events, time index, transaction ids.
func (w *replayWriter) tables() [3]*tableWriter { return [3]*tableWriter{w.events, w.times, w.txs} }

// flush hands the batch being filled to the commit pipeline.
func (w *replayWriter) flush() error {
	err := w.pipe.Flush()
	w.b = w.pipe.Batch()
	return err
}

// finish writes what is left once every event is written: it hands the
// last batch of entries to the pipeline, finishes the tables, writes the
// held documents into a batch committed with sync (which makes every
// earlier one durable) and ingests the tables.
func (w *replayWriter) finish(ctx context.Context, pdb *pebble.DB) error {
	// The last batch of entries commits while the tables are finished and
	// the held documents written into the next batch: nothing else is left
	// to overlap it with (a last commit of up to replayBatchBytes took 75 to
	// 88 ms of a 100,000-event replay when it came alone).
	if err := w.flush(); err != nil {
		return err
	}
	var tables []string
	for _, t := range w.tables() {
		paths, err := t.finish()
		if err != nil {
			return err
		}
		tables = append(tables, paths...)
	}
	if err := w.load.Flush(w.b); err != nil {
		return err
	}
	if err := w.pipe.Wait(); err != nil {
		return err
	}
	// The synced commit makes every earlier one durable; Ingest syncs the
	// tables and the store's manifest.
	if err := w.b.Commit(pebble.Sync); err != nil {
		return err
	}
	if len(tables) > 0 {
		if err := pdb.Ingest(ctx, tables); err != nil {
			return fmt.Errorf("replay: ingesting the log's tables: %w", err)
		}
	}
	return nil
}

// abort releases what the writer holds after a failure (or after finish,
// when there is nothing left to release).
func (w *replayWriter) abort() {
	for _, t := range w.tables() {
		t.abort()
	}
	w.pipe.Close()
}

// CheckReplayDir returns nil if dir may receive a replay: it does not
// exist or is an empty directory; otherwise a directoryNotEmpty error.
func CheckReplayDir(dir string) error { return checkEmptyDir(dir) }

// checkEmptyDir returns nil if dir does not exist or is an empty directory.
func checkEmptyDir(dir string) error {
	if dir == "" {
		return errorf(CodeInvalidRequest, "no directory to replay into")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return &Error{Code: CodeDirectoryNotEmpty, Description: fmt.Sprintf("cannot replay into %s: %v", dir, err)}
	case len(entries) > 0:
		return &Error{Code: CodeDirectoryNotEmpty, Description: fmt.Sprintf("cannot replay into %s: it holds %d entries (such as %q); name a new or empty directory", dir, len(entries), entries[0].Name())}
	}
	return nil
}

// ReplayTo copies dataset name as of point to into dir (see Replay),
// reading this engine's log directly: the library form of `vellum replay`.
func (e *Engine) ReplayTo(ctx context.Context, name string, p *authz.Principal, to Point, dir string, opts ReplayOptions) (*ReplayResult, error) {
	if err := checkEmptyDir(dir); err != nil {
		return nil, err
	}
	first, err := e.EventsPage(ctx, name, p, EventsOptions{To: to, MaxBytes: 1})
	if err != nil {
		return nil, err
	}
	src := func(ctx context.Context, emit func([]byte) error) error {
		return PageEvents(ctx, first, func(ctx context.Context, after uint64, limit int) (*EventsPage, error) {
			return e.EventsPage(ctx, name, p, EventsOptions{ToSeq: first.To, After: after, Limit: limit})
		}, emit)
	}
	opts.Events = first.To
	return Replay(ctx, dir, name, first.ACL, src, opts)
}

// pageWindow is the number of page requests PageEvents keeps in flight.
const pageWindow = 3

// PageEvents emits the events of first and of the pages that next returns
// until the replay's last event: the loop shared by ReplayTo and the
// transport's clients. next(ctx, after, limit) must return the page that
// starts after event after and holds at most limit events (it may hold
// fewer). PageEvents asks for up to pageWindow pages at once, ahead of the
// events it emits, so next is called concurrently with itself and with
// emit; a page's events must stay unchanged once next has returned it.
//
// The number of events asked for each page starts at the size of first
// and doubles while pages come back full; once a page comes back short (the
// source's byte budget for a page ended it), the rest of its range is asked
// for at once, and later pages ask for 7/8 of what that page held.
func PageEvents(ctx context.Context, first *EventsPage, next func(ctx context.Context, after uint64, limit int) (*EventsPage, error), emit func([]byte) error) error {
	type request struct {
		after uint64
		limit int
		done  chan fetched
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the requests still in flight end with the loop
	fetch := func(after uint64, limit int) *request {
		r := &request{after: after, limit: limit, done: make(chan fetched, 1)}
		go func() {
			p, err := next(ctx, after, limit)
			r.done <- fetched{p, err}
		}()
		return r
	}
	for _, raw := range first.Events {
		if err := emit(raw); err != nil {
			return err
		}
	}
	after := uint64(len(first.Events))
	if after >= first.To {
		return nil
	}
	if after == 0 {
		return fmt.Errorf("replay: the source sent an empty page at event 0 of %d", first.To)
	}
	per, cut := len(first.Events), false
	issued := after // the end of the ranges asked for
	var window []*request
	for after < first.To {
		for len(window) < pageWindow && issued < first.To {
			limit := int(min(uint64(per), first.To-issued))
			window = append(window, fetch(issued, limit))
			issued += uint64(limit)
		}
		r := window[0]
		window = window[1:]
		f := <-r.done
		if f.err != nil {
			return f.err
		}
		got := len(f.page.Events)
		if got == 0 || got > r.limit {
			return fmt.Errorf("replay: the source sent %d events for a page of at most %d after event %d", got, r.limit, r.after)
		}
		for _, raw := range f.page.Events {
			if err := emit(raw); err != nil {
				return err
			}
		}
		after += uint64(got)
		switch {
		case got < r.limit:
			// The rest of this page's range comes before the pages asked
			// for after it.
			window = append([]*request{fetch(after, r.limit-got)}, window...)
			per, cut = max(1, min(per, got*7/8)), true
		case !cut && r.limit == per:
			per *= 2
		}
	}
	return nil
}

type fetched struct {
	page *EventsPage
	err  error
}
