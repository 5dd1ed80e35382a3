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
//	Transact ──▶ queue ──▶ writer goroutine ──ApplyNoSyncWait──▶ Pebble memtable + WAL
//	                          │ (one at a time, in order)
//	                          ▼
//	                       syncer goroutine ──SyncWait──▶ answer the caller
//
// The writer applies each transaction's mutations against the current
// documents, builds one batch holding the event, the idempotency and time
// index entries and the projection updates, and hands it to Pebble without
// waiting for the fsync. It then goes straight on to the next transaction,
// which therefore sees the previous one's writes. The syncer waits for each
// batch's WAL sync in order and only then answers the caller. Pebble syncs
// everything queued in its WAL with one fsync, so concurrent transactions
// share syncs (group commit) while the writer keeps working.
//
// Writes become visible in Pebble before they are synced; reads therefore
// wait until everything applied before they started is durable (waitDurable),
// so nobody ever reads a write that a crash could still take back.

// maxPending bounds the batches handed to Pebble but not yet synced; the
// writer blocks when it is reached, so memory stays bounded under load.
const maxPending = 4096

// job is one request for the writer goroutine: a transaction, or a function
// that must run with the dataset's writes stopped (rebuild).
type job struct {
	tx    *txRequest
	fn    func() error
	reply chan jobResult // buffered (1)
}

type jobResult struct {
	res *TxResult
	err error
}

// pendingSync is a batch applied to the memtable whose fsync has not been
// waited for yet.
type pendingSync struct {
	batch         *pebble.Batch // nil: nothing was written; answer after earlier syncs
	seq           uint64        // the event's sequence number, 0 when batch is nil
	commit        *Commit       // for the dataset's watchers, nil when none watch
	policyChanged bool          // the transaction changed a group document
	reply         chan jobResult
	res           jobResult
}

type writer struct {
	ds    *dataset
	db    *pebble.DB
	jobs  chan job
	syncs chan pendingSync
	stop  chan struct{}
	wg    sync.WaitGroup

	// Owned by the writer goroutine.
	seq     uint64
	hash    [32]byte
	last    time.Time
	entropy *ulid.MonotonicEntropy

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
		syncs:   make(chan pendingSync, maxPending),
		stop:    make(chan struct{}),
		seq:     seq,
		hash:    hash,
		last:    last,
		entropy: ulid.Monotonic(rand.Reader, 0),
	}
	w.applied.Store(seq)
	w.durable.Store(seq)
	ch := make(chan struct{})
	w.notify.Store(&ch)
	w.wg.Add(2)
	go w.writeLoop()
	go w.syncLoop()
	return w
}

// submit queues a job and waits for its answer.
func (w *writer) submit(ctx context.Context, j job) (*TxResult, error) {
	if f := w.failed.Load(); f != nil {
		return nil, f
	}
	j.reply = make(chan jobResult, 1)
	select {
	case w.jobs <- j:
	case <-ctx.Done():
		return nil, AsError(ctx.Err())
	case <-w.stop:
		return nil, errorf(CodeUnavailable, "dataset %q is closing", w.ds.name)
	}
	// Once queued, the job runs to completion even if ctx ends: a transaction
	// is either rejected or committed, and the caller learns which only by
	// waiting (or by retrying with its transactionId).
	r := <-j.reply
	return r.res, r.err
}

func (w *writer) writeLoop() {
	defer w.wg.Done()
	defer close(w.syncs)
	for {
		select {
		case <-w.stop:
			// Drain what was queued before the stop so no caller hangs.
			for {
				select {
				case j := <-w.jobs:
					j.reply <- jobResult{err: errorf(CodeUnavailable, "dataset %q is closing", w.ds.name)}
				default:
					return
				}
			}
		case j := <-w.jobs:
			w.run(j)
		}
	}
}

func (w *writer) run(j job) {
	if f := w.failed.Load(); f != nil {
		j.reply <- jobResult{err: f}
		return
	}
	if j.fn != nil {
		// Exclusive work: wait until every earlier write is durable first.
		w.waitAllSynced()
		j.reply <- jobResult{err: j.fn()}
		return
	}
	a, res, err := w.ds.apply(w, j.tx)
	if err != nil || a.batch == nil {
		// Rejected, dry run, or a retry answered from the log: nothing to
		// write, but answer in order, after the syncs of earlier writes that
		// the answer may depend on.
		w.syncs <- pendingSync{reply: j.reply, res: jobResult{res: res, err: err}}
		return
	}
	if err := w.db.ApplyNoSyncWait(a.batch, pebble.Sync); err != nil {
		a.batch.Close()
		w.fail(err)
		j.reply <- jobResult{err: w.failed.Load()}
		return
	}
	w.applied.Store(a.seq)
	w.batchBytes.Add(uint64(a.batch.Len()))
	w.syncs <- pendingSync{batch: a.batch, seq: a.seq, commit: a.commit, policyChanged: a.policyChanged, reply: j.reply, res: jobResult{res: res}}
}

func (w *writer) syncLoop() {
	defer w.wg.Done()
	for p := range w.syncs {
		if p.batch != nil {
			err := p.batch.SyncWait()
			p.batch.Close()
			if err != nil {
				w.fail(err)
			} else {
				w.setDurable(p.seq)
				if p.commit != nil {
					w.ds.feed.publish(p.commit)
				}
				if p.policyChanged {
					w.ds.e.access.changed()
				}
			}
		}
		if f := w.failed.Load(); f != nil && p.res.err == nil {
			p.res = jobResult{err: f}
		}
		p.reply <- p.res
	}
}

// waitAllSynced waits (in the writer goroutine) until every batch handed to
// Pebble is durable.
func (w *writer) waitAllSynced() {
	_ = w.waitDurable(context.Background(), w.applied.Load())
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
	close(w.stop)
	w.wg.Wait()
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
