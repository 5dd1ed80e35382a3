package vellum

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/oklog/ulid/v2"
)

// The write path of one dataset (see docs/architecture.md):
//
//	Transact ──▶ queue ──▶ writer ──group──▶ committer ──ApplyNoSyncWait──▶ Pebble memtable + WAL
//	                                              │
//	                                              ▼
//	                                           syncer ──SyncWait──▶ answer the callers
//
// The writer takes the transactions queued for the dataset, in order, and
// applies each against the current documents: it builds the event, the
// idempotency and time index entries and the projection updates. It puts
// the transactions it finds queued together into one group that shares one
// Pebble batch (each transaction still its own event, with its own sequence
// number and idempotency entry; a rejected one writes nothing). The
// committer hands each group's batch to Pebble without waiting for the
// fsync, and the syncer waits for each batch's WAL sync in order and only
// then answers the group's callers and publishes its commits to watchers.
//
// A group stays open while the one before it is still on its way to disk
// (group commit): the writer keeps adding the transactions that arrive in
// the meantime and seals the group when the previous one is durable, or
// when the group reaches its bounds. An idle dataset therefore seals a lone
// transaction at once, and a busy one writes about one group per fsync.
// Sealing whenever the queue ran dry instead made groups of about two
// transactions under 64 concurrent writers, each with its own Pebble commit,
// sync wait and wake-ups (see docs/architecture.md for the figures).
//
// The writer does not wait for Pebble either: the documents written by
// groups that Pebble may not show yet are in its cache of recent documents
// (recent), which the next transactions read first, so each transaction
// sees every earlier one. What the cache cannot answer — an idempotency
// lookup of a transaction id still in flight, a selection by query — waits
// until the groups before it are visible in Pebble.
//
// Writes become visible in Pebble before they are synced; reads therefore
// wait until everything applied before they started is durable (waitDurable),
// so nobody ever reads a write that a crash could still take back.

// maxPending bounds the groups handed on but not yet synced; the writer
// blocks when it is reached, so memory stays bounded under load.
const maxPending = 1024

// Bounds of one group: the writer seals a group when the previous one is
// durable and nothing more is queued, or when it reaches either bound.
const (
	maxGroupTxs   = 256
	maxGroupBytes = 4 << 20
)

// Synced group batches are kept for later groups, so that their buffers
// need not grow again: up to maxKeptBatches (as many as the groups that 64
// concurrent single-transaction callers keep in flight), each of at most
// maxKeptBatchBytes, so at most a few MiB stay allocated.
const (
	maxKeptBatches    = 64
	maxKeptBatchBytes = 64 << 10
)

// Bounds of the cache of recent documents: beyond them, the documents that
// Pebble already shows are dropped from it when the next group starts.
const (
	maxRecentDocs  = 4096
	maxRecentBytes = 32 << 20
)

// job is one request for the writer goroutine: a transaction, or a function
// that must run with the dataset's writes stopped (rebuild).
type job struct {
	tx *txRequest
	fn func() error
	// done receives the job's answer, exactly once, from the writer's
	// goroutines: it must not block (see Engine.TransactAsync).
	done func(jobResult)
}

type jobResult struct {
	res *TxResult
	err error
}

// group is the transactions the writer put into one batch.
type group struct {
	num     uint64
	batch   *pebble.Batch // nil: nothing was written; answer after earlier syncs
	lastSeq uint64        // the last event's sequence number, 0 when batch is nil
	txs     []groupTx
	txids   []string      // the ids of the transactions that wrote events
	visible chan struct{} // closed once Pebble shows the batch (or it failed)
}

// groupTx is one transaction of a group.
type groupTx struct {
	done          func(jobResult)
	res           jobResult
	commit        *Commit // for the dataset's watchers, nil when nothing was written
	policyChanged bool    // the transaction changed a group document
}

// recentDoc is a document the writer wrote or read: the current version
// unless a later write replaced the entry.
type recentDoc struct {
	doc   map[string]any // nil: deleted; shared, never modified
	value []byte         // its stored projection value, when known (hasValue)
	group uint64         // the group that wrote it, 0 when read from Pebble
	size  int
	// hasValue tells whether value is the stored value (nil for a deleted
	// document); documents read from Pebble do not keep it.
	hasValue bool
}

type writer struct {
	ds       *dataset
	db       *pebble.DB
	jobs     chan job
	commits  chan *group
	syncs    chan *group
	free     chan *pebble.Batch // synced group batches, reset for reuse
	stop     chan struct{}
	ctx      context.Context // ends with stop, for the writer's background scans
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	closeMu  sync.RWMutex // held for reading while a job is queued
	closed   bool         // no more jobs are queued (under closeMu)

	// Owned by the writer goroutine.
	seq     uint64
	hash    [32]byte
	last    time.Time
	entropy *ulid.MonotonicEntropy
	cur     *group        // the group being built, nil between groups
	sent    *group        // the last group handed to the committer
	txb     *pebble.Batch // scratch batch of one transaction
	enc     []byte        // scratch buffer for encoding documents
	recent  map[string]*recentDoc
	recentN int               // bytes of recent's documents, roughly
	txids   map[string]uint64 // transaction id → group, for groups Pebble may not show yet
	ids     idFilter          // ids certainly never stored (see idFilter)
	groupN  uint64            // number of the last group started
	// inflight lists, in order, the groups whose transaction ids are in
	// txids.
	inflight []*group

	// visible is the number of the last group whose batch Pebble shows.
	visible atomic.Uint64
	// unsynced counts the groups sealed but not yet through the syncer;
	// synced receives a signal when it drops to 0, which seal discards.
	unsynced atomic.Int32
	synced   chan struct{} // buffered (1)

	// applied is the highest sequence number handed to Pebble; durable the
	// highest one whose WAL sync has completed.
	applied atomic.Uint64
	durable atomic.Uint64
	notify  atomic.Pointer[chan struct{}] // closed and replaced when durable moves

	failed atomic.Pointer[Error] // set when a sync failed: the dataset stops writing

	batchBytes atomic.Uint64 // bytes of all batches committed, for metrics
}

func newWriter(ds *dataset, db *pebble.DB, seq uint64, hash [32]byte, last time.Time) *writer {
	w := &writer{
		ds:      ds,
		db:      db,
		jobs:    make(chan job, 1024),
		commits: make(chan *group, maxPending),
		syncs:   make(chan *group, maxPending),
		free:    make(chan *pebble.Batch, maxKeptBatches),
		stop:    make(chan struct{}),
		synced:  make(chan struct{}, 1),
		seq:     seq,
		hash:    hash,
		last:    last,
		entropy: ulid.Monotonic(rand.Reader, 0),
		txb:     db.NewBatch(),
		recent:  map[string]*recentDoc{},
		txids:   map[string]uint64{},
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.applied.Store(seq)
	w.durable.Store(seq)
	ch := make(chan struct{})
	w.notify.Store(&ch)
	w.wg.Add(3)
	go w.writeLoop()
	go w.commitLoop()
	go w.syncLoop()
	w.scanIDs()
	return w
}

// scanIDs starts the filter of stored ids over and fills it from the
// current documents in the background (see idFilter). It runs when the
// writer starts and after a rebuild of the projections, in the writer
// goroutine or before it runs: the ids that the writer writes from then
// on are added by the writer, those already stored by the scan.
func (w *writer) scanIDs() {
	gen := w.ids.reset()
	if w.ds.e.readOnly {
		return // nothing is ever created: the filter stays empty and unused
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if err := w.ids.scan(w.ctx, gen, w.ds.store.IDs); err != nil && w.ctx.Err() == nil {
			// Lookups are made as before; nothing is wrong but speed.
			w.ds.e.logger.Warn("scanning document ids failed; creates look every id up", "dataset", w.ds.name, "err", err)
		}
	}()
}

// submit queues a job and waits for its answer.
func (w *writer) submit(ctx context.Context, j job) (*TxResult, error) {
	reply := make(chan jobResult, 1)
	j.done = func(r jobResult) { reply <- r }
	if err := w.enqueue(ctx, j); err != nil {
		return nil, err
	}
	// Once queued, the job runs to completion even if ctx ends: a transaction
	// is either rejected or committed, and the caller learns which only by
	// waiting (or by retrying with its transactionId).
	r := <-reply
	return r.res, r.err
}

// enqueue queues a job whose answer goes to j.done. When it returns an
// error, the job was not queued and j.done is never called.
//
// A job is queued only while the writer is open (closeMu held for reading,
// closed false): close sets closed before it stops the writer, so every
// queued job is in w.jobs when the writer drains it, and none is left
// unanswered.
func (w *writer) enqueue(ctx context.Context, j job) error {
	if f := w.failed.Load(); f != nil {
		return f
	}
	w.closeMu.RLock()
	defer w.closeMu.RUnlock()
	if w.closed {
		return errorf(CodeUnavailable, "dataset %q is closing", w.ds.name)
	}
	select {
	case w.jobs <- j:
		return nil
	case <-ctx.Done():
		return AsError(ctx.Err())
	}
}

func (w *writer) writeLoop() {
	defer w.wg.Done()
	defer close(w.commits)
	defer w.txb.Close()
	for {
		select {
		case <-w.stop:
			// Drain what was queued before the stop so no caller hangs.
			for {
				select {
				case j := <-w.jobs:
					j.done(jobResult{err: errorf(CodeUnavailable, "dataset %q is closing", w.ds.name)})
				default:
					return
				}
			}
		case j := <-w.jobs:
			w.runGroup(j)
		}
	}
}

// runGroup runs j and whatever is queued behind it, up to the bounds of a
// group, and hands the group on.
func (w *writer) runGroup(j job) {
	if w.ids.overgrown() {
		// Between groups: once every earlier one is synced (and so shown
		// by Pebble), a new scan sees every id written so far.
		w.waitAllSynced()
		w.waitVisible(false)
		w.scanIDs()
	}
	w.startGroup()
	for {
		if j.fn != nil {
			// Exclusive work: everything before it must be durable first.
			w.seal()
			w.waitAllSynced()
			if f := w.failed.Load(); f != nil {
				j.done(jobResult{err: f})
			} else {
				j.done(jobResult{err: j.fn()})
			}
			clear(w.recent)
			w.recentN = 0
			return
		}
		w.run(j)
		g := w.cur
		if g == nil || len(g.txs) >= maxGroupTxs || (g.batch != nil && g.batch.Len() >= maxGroupBytes) {
			break
		}
		select {
		case j = <-w.jobs:
			continue
		default:
		}
		if w.unsynced.Load() > 0 {
			// The previous group is still on its way to disk: gather what
			// arrives meanwhile (group commit).
			select {
			case j = <-w.jobs:
				continue
			case <-w.synced:
			}
		}
		break
	}
	w.seal()
}

// startGroup begins a new group and forgets what Pebble shows already: the
// transaction ids of earlier groups and, when the cache of recent
// documents is full, those documents.
func (w *writer) startGroup() {
	visible := w.visible.Load()
	for len(w.inflight) > 0 && w.inflight[0].num <= visible {
		for _, id := range w.inflight[0].txids {
			if w.txids[id] <= visible {
				delete(w.txids, id)
			}
		}
		w.inflight[0] = nil
		w.inflight = w.inflight[1:]
	}
	if len(w.recent) > maxRecentDocs || w.recentN > maxRecentBytes {
		for id, r := range w.recent {
			if r.group <= visible {
				delete(w.recent, id)
				w.recentN -= r.size
			}
		}
	}
	w.groupN++
	w.cur = &group{num: w.groupN, visible: make(chan struct{})}
}

// seal hands the group being built to the committer.
func (w *writer) seal() {
	g := w.cur
	if g == nil {
		return
	}
	w.cur = nil
	if len(g.txs) == 0 {
		return
	}
	w.sent = g
	if len(g.txids) > 0 {
		w.inflight = append(w.inflight, g)
	}
	select {
	case <-w.synced: // from before this group: stale
	default:
	}
	w.unsynced.Add(1)
	w.commits <- g
}

// waitVisible waits until Pebble shows every group before the one being
// built, after sealing that one if it holds writes that the caller must
// see (sealCurrent).
func (w *writer) waitVisible(sealCurrent bool) {
	if sealCurrent && w.cur != nil && w.cur.batch != nil {
		w.seal()
		w.startGroup()
	}
	if w.sent != nil {
		<-w.sent.visible
	}
}

func (w *writer) run(j job) {
	if f := w.failed.Load(); f != nil {
		j.done(jobResult{err: f})
		return
	}
	a, res, err := w.ds.apply(w, j.tx)
	// A rejection, dry run, or retry answered from the log wrote nothing,
	// but its answer may depend on earlier writes: it is answered with its
	// group, after their syncs.
	w.cur.txs = append(w.cur.txs, groupTx{done: j.done, res: jobResult{res: res, err: err}, commit: a.commit, policyChanged: a.policyChanged})
}

// addTx adds the scratch batch of one transaction, event seq, to the group
// being built.
func (w *writer) addTx(seq uint64) error {
	g := w.cur
	if g.batch == nil {
		select {
		case g.batch = <-w.free:
		default:
			g.batch = w.db.NewBatch()
		}
	}
	if err := g.batch.Apply(w.txb, nil); err != nil {
		return err
	}
	g.lastSeq = seq
	return nil
}

// remember puts a document the current group wrote into the cache of
// recent documents.
func (w *writer) remember(id string, doc map[string]any, value []byte, size int) {
	if old, ok := w.recent[id]; ok {
		w.recentN -= old.size
	}
	w.recent[id] = &recentDoc{doc: doc, value: value, hasValue: true, group: w.cur.num, size: size}
	w.recentN += size
	if doc != nil {
		w.ids.add(id)
	}
}

// storedValue returns the stored projection value of document id if the
// cache knows it (nil: deleted): for the projection's diffs.
func (w *writer) storedValue(id string) ([]byte, bool) {
	r, ok := w.recent[id]
	if !ok || !r.hasValue {
		return nil, false
	}
	return r.value, true
}

func (w *writer) commitLoop() {
	defer w.wg.Done()
	defer close(w.syncs)
	for g := range w.commits {
		if g.batch != nil && w.failed.Load() == nil {
			w.applied.Store(g.lastSeq)
			if err := w.db.ApplyNoSyncWait(g.batch, pebble.Sync); err != nil {
				w.fail(err)
			} else {
				w.batchBytes.Add(uint64(g.batch.Len()))
			}
		}
		w.visible.Store(g.num)
		close(g.visible)
		w.syncs <- g
	}
}

func (w *writer) syncLoop() {
	defer w.wg.Done()
	for g := range w.syncs {
		if g.batch != nil {
			ok := false
			if w.failed.Load() == nil {
				if err := g.batch.SyncWait(); err != nil {
					w.fail(err)
				} else {
					ok = true
				}
			}
			if !ok {
				g.batch.Close()
			} else {
				w.recycle(g.batch)
				w.setDurable(g.lastSeq)
				changed := false
				for i := range g.txs {
					t := &g.txs[i]
					if t.commit != nil {
						w.ds.feed.publish(t.commit)
					}
					changed = changed || t.policyChanged
				}
				if changed {
					w.ds.e.access.changed()
				}
			}
		}
		if w.unsynced.Add(-1) == 0 {
			select {
			case w.synced <- struct{}{}:
			default:
			}
		}
		f := w.failed.Load()
		for i := range g.txs {
			t := &g.txs[i]
			if f != nil && t.res.err == nil {
				t.res = jobResult{err: f}
			}
			t.done(t.res)
		}
	}
}

// recycle keeps a synced group batch for a later group (Reset keeps its
// buffer), or closes it when enough are kept or it is large.
func (w *writer) recycle(b *pebble.Batch) {
	if b.Len() > maxKeptBatchBytes {
		b.Close()
		return
	}
	b.Reset()
	select {
	case w.free <- b:
	default:
		b.Close()
	}
}

// waitAllSynced waits (in the writer goroutine) until every event the
// writer made is durable.
func (w *writer) waitAllSynced() {
	_ = w.waitDurable(context.Background(), w.seq)
}

func (w *writer) setDurable(seq uint64) {
	w.durable.Store(seq)
	ch := make(chan struct{})
	old := w.notify.Swap(&ch)
	close(*old)
}

// waitDurable returns once every event up to seq is synced.
func (w *writer) waitDurable(ctx context.Context, seq uint64) error {
	for {
		ch := w.notify.Load()
		if w.durable.Load() >= seq {
			return nil
		}
		if f := w.failed.Load(); f != nil {
			return f
		}
		select {
		case <-*ch:
		case <-ctx.Done():
			return AsError(ctx.Err())
		}
	}
}

// readBarrier makes a read see only durable state: it waits until every write
// that Pebble may already show is synced.
func (w *writer) readBarrier(ctx context.Context) error {
	return w.waitDurable(ctx, w.applied.Load())
}

func (w *writer) fail(err error) {
	e := &Error{Code: CodeInternal, Description: "storage failure, the dataset stopped accepting writes; restart the daemon: " + err.Error()}
	if w.failed.CompareAndSwap(nil, e) {
		w.ds.e.logger.Error("write path failed", "dataset", w.ds.name, "err", err)
		// Wake readers waiting for durability.
		ch := make(chan struct{})
		old := w.notify.Swap(&ch)
		close(*old)
	}
}

func (w *writer) close() {
	w.closeMu.Lock()
	w.closed = true
	w.closeMu.Unlock()
	w.stopOnce.Do(func() { close(w.stop); w.cancel() })
	w.wg.Wait()
	for {
		select {
		case b := <-w.free:
			b.Close()
		default:
			return
		}
	}
}

// nextTxID returns a new ULID for a transaction at t.
func (w *writer) nextTxID(t time.Time) string {
	return ulid.MustNew(ulid.Timestamp(t), w.entropy).String()
}

// nextTime returns the time of the next event: now, but never before the
// previous event, so that event times never go backwards within a dataset.
func (w *writer) nextTime() time.Time {
	now := time.Now().UTC()
	if now.Before(w.last) {
		now = w.last
	}
	w.last = now
	return now
}
