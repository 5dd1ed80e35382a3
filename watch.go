package vellum

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/eventlog"
)

// Commit is one durable transaction of a dataset, as watchers see it: its
// event and, for each effect, the document before and after.
//
// A Commit is shared by every watcher that receives it: nothing in it may be
// modified.
type Commit struct {
	Dataset string
	Event   *eventlog.Event
	// Docs has one entry per effect, in the order of Event.Effects.
	Docs []CommitDoc
	// Policy is the dataset's access policy just after the transaction, or
	// nil when the commit was read back from the log (then the current
	// policy, Engine.Policy, applies: access is decided as of now, so a
	// listener that lost access does not receive what it missed).
	Policy *authz.Policy
	// Live is false when the commit was read back from the log rather than
	// delivered as it happened.
	Live bool
	// policyGen is Policy's generation (dataset.policyGen), for listeners
	// that must never go back to an older policy.
	policyGen uint64
}

// CommitDoc is one document a commit changed: nil Before means it did not
// exist, nil After that it was deleted. AfterJSON is After's encoding, as
// stored.
type CommitDoc struct {
	ID        string
	Before    map[string]any
	After     map[string]any
	AfterJSON []byte
}

// DefaultWatchBuffer is the number of live commits a Watcher holds before it
// falls back to reading the log.
const DefaultWatchBuffer = 1024

// WatchOptions configure a Watcher.
type WatchOptions struct {
	// Buffer is the number of live commits held for the watcher; 0 means
	// DefaultWatchBuffer. A watcher that falls further behind does not slow
	// the writer down: it reads what it missed from the log instead.
	Buffer int
}

// A Watcher delivers a dataset's commits in log order, each exactly once:
// first those already in the log after the starting point, then new ones as
// they become durable. A Watcher never misses a commit, however slowly it is
// read: what its buffer cannot hold is read from the log. It is used by one
// goroutine at a time.
type Watcher struct {
	d      *dataset
	next   uint64 // sequence number of the next commit to deliver
	live   chan *Commit
	held   *Commit // a live commit that arrived ahead of next
	closed atomic.Bool
}

// feed fans a dataset's durable commits out to its watchers. The syncer
// publishes to it; a full watcher buffer drops the commit instead of
// blocking, and the watcher reads it from the log later.
type feed struct {
	mu       sync.Mutex
	watchers map[*Watcher]struct{}
}

func (f *feed) add(w *Watcher) {
	f.mu.Lock()
	if f.watchers == nil {
		f.watchers = map[*Watcher]struct{}{}
	}
	f.watchers[w] = struct{}{}
	f.mu.Unlock()
}

func (f *feed) remove(w *Watcher) {
	f.mu.Lock()
	delete(f.watchers, w)
	f.mu.Unlock()
}

func (f *feed) publish(c *Commit) {
	f.mu.Lock()
	for w := range f.watchers {
		select {
		case w.live <- c:
		default: // full: the watcher will read this commit from the log
		}
	}
	f.mu.Unlock()
}

// Watch returns a Watcher of dataset name's commits with sequence numbers
// greater than after (0: from the first event). after may not be beyond the
// dataset's durable head.
func (e *Engine) Watch(name string, after uint64, opts WatchOptions) (*Watcher, error) {
	d, err := e.dataset(name)
	if err != nil {
		return nil, err
	}
	if head := d.w.durable.Load(); after > head {
		return nil, errorf(CodeInvalidRequest, "cannot watch dataset %q from event %d: its log ends at event %d", name, after, head)
	}
	n := opts.Buffer
	if n <= 0 {
		n = DefaultWatchBuffer
	}
	w := &Watcher{d: d, next: after + 1, live: make(chan *Commit, n)}
	d.feed.add(w)
	return w, nil
}

// Head returns the sequence number of dataset name's last durable event.
func (e *Engine) Head(name string) (uint64, error) {
	d, err := e.dataset(name)
	if err != nil {
		return 0, err
	}
	return d.w.durable.Load(), nil
}

// Policy returns dataset name's current access policy.
func (e *Engine) Policy(name string) (*authz.Policy, error) {
	d, err := e.dataset(name)
	if err != nil {
		return nil, err
	}
	return d.policy.Load(), nil
}

// Next returns the next commit, waiting for it until ctx is done.
func (w *Watcher) Next(ctx context.Context) (*Commit, error) {
	for {
		if w.closed.Load() {
			return nil, errorf(CodeUnavailable, "watcher of dataset %q is closed", w.d.name)
		}
		if c := w.held; c != nil {
			if c.Event.Seq == w.next {
				w.held = nil
				w.next++
				return c, nil
			}
			// Commits between next and the held one were dropped from the
			// buffer: they are durable (the held one is), so read them.
			return w.fromLog()
		}
		select {
		case c := <-w.live:
			w.take(c)
			continue
		default:
		}
		if w.d.w.durable.Load() >= w.next {
			// Durable but not in the buffer: from before the watcher
			// started, or dropped while the buffer was full.
			return w.fromLog()
		}
		select {
		case c := <-w.live:
			w.take(c)
		case <-ctx.Done():
			return nil, AsError(ctx.Err())
		}
	}
}

// take considers a live commit: one already delivered (read from the log
// first) is skipped, a later one is held until the gap before it is filled.
func (w *Watcher) take(c *Commit) {
	if c.Event.Seq >= w.next {
		w.held = c
	}
}

// Close stops the watcher; the engine forgets it.
func (w *Watcher) Close() {
	if w.closed.CompareAndSwap(false, true) {
		w.d.feed.remove(w)
	}
}

// fromLog reads commit w.next back from the log.
func (w *Watcher) fromLog() (*Commit, error) {
	c, err := w.d.commitAt(w.next)
	if err != nil {
		return nil, err
	}
	w.next++
	return c, nil
}

// commitAt rebuilds the commit of event seq from the log and the history
// index.
func (d *dataset) commitAt(seq uint64) (*Commit, error) {
	ev, err := d.log.Get(seq)
	if err != nil {
		return nil, AsError(err)
	}
	c := &Commit{Dataset: d.name, Event: ev, Docs: make([]CommitDoc, len(ev.Effects))}
	for i := range ev.Effects {
		ef := &ev.Effects[i]
		cd := CommitDoc{ID: ef.DocID}
		if ef.PrevRev != "" {
			raw, ok, err := d.store.AtSeq(ef.DocID, seq-1)
			if err != nil {
				return nil, AsError(err)
			}
			if ok {
				if err := json.Unmarshal(raw, &cd.Before); err != nil {
					return nil, AsError(err)
				}
			}
		}
		if ef.Operation != eventlog.OpDelete {
			raw := ef.Doc
			if raw == nil {
				var ok bool
				if raw, ok, err = d.store.AtSeq(ef.DocID, seq); err != nil {
					return nil, AsError(err)
				} else if !ok {
					return nil, errorf(CodeInternal, "event %d of dataset %q writes %q, but its history has no version there", seq, d.name, ef.DocID)
				}
			}
			cd.AfterJSON = raw
			if err := json.Unmarshal(raw, &cd.After); err != nil {
				return nil, AsError(err)
			}
		}
		c.Docs[i] = cd
	}
	return c, nil
}

// accessNotifier tells watchers of access that it changed: a token was
// created or revoked, a dataset's acl mode or a group document changed.
type accessNotifier struct {
	ch atomic.Pointer[chan struct{}]
}

func (a *accessNotifier) init() {
	ch := make(chan struct{})
	a.ch.Store(&ch)
}

func (a *accessNotifier) changed() {
	ch := make(chan struct{})
	close(*a.ch.Swap(&ch))
}

// AccessChanged returns a channel that is closed at the next change of
// access: a token created or revoked, a dataset's acl mode changed, or a
// group document written. Call it again after each close for the next.
func (e *Engine) AccessChanged() <-chan struct{} { return *e.access.ch.Load() }
