package vellum

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/authz/groq"
	"github.com/vellum-db/vellum/authz/groq/syntax"
	"github.com/vellum-db/vellum/eventlog"
	"github.com/vellum-db/vellum/projection"
)

// Listeners (docs/listeners.md).
//
// A dataset's listeners share one hub: one goroutine that reads the
// dataset's commits from ONE Watcher and fans each out. The hub groups its
// listeners by the ShareKey of their principal (principals with equal
// grants decide alike) and, inside, by their filter (text, parameters and,
// when the filter calls identity(), the identity). For each document
// version of a commit it evaluates a filter once per distinct filter and
// read access once per distinct ShareKey, and only where the filter
// matched; every listener of a group receives the same *ListenEvent.
//
// Transitions are decided per commit from the document before and after
// it: visible means readable by the listener's principal AND matching its
// filter. Before and after are judged under the policy the hub holds (the
// one before the commit, for a commit that changes a group), so what a
// listener was told and what it is told next agree.
//
// When access changes (a group document, the acl, a token), the hub
// re-authenticates every listener (ListenOptions.Reauth) and reconciles:
// it scans the dataset's current documents once, and for every listener
// group whose visibility changed it emits appear or disappear for the
// documents that became or stopped being visible. A listener whose
// credential no longer authenticates gets disappear for every document it
// could see, then ends with unauthorized. The hub keeps no per-listener set
// of seen documents: the reconciliation is bounded by a scan of the current
// documents (one scan per access change, whatever the number of
// listeners), and judges documents as they are when the hub handles the
// change.
//
// A listener that resumes (ListenOptions.LastEventID) or starts while the
// hub is ahead of it first catches up alone: its own Watcher reads what it
// missed from the log, in order, and it joins the hub exactly where it
// caught up. A listener whose buffer is full when the hub has an event for
// it ends with listenerOverflow and the id of the last event it was given,
// so it resumes from there: the hub never waits for a listener and never
// holds more than the buffer for it.

// Listener error codes.
const (
	// CodeListenerOverflow ends a listener that did not keep up: its
	// buffer was full. Resume from Error.Details["lastEventId"].
	CodeListenerOverflow = "listenerOverflow"
)

// DefaultListenBuffer is the number of events held for a listener that
// has not taken them yet.
const DefaultListenBuffer = 1024

// Transitions of a document for one listener.
const (
	TransitionAppear    = "appear"
	TransitionUpdate    = "update"
	TransitionDisappear = "disappear"
)

// Types of ListenEvent.
const (
	ListenMutation = "mutation"
	ListenError    = "error"
)

// ReasonAccessChanged marks the appear and disappear events a change of
// access (not of the document) caused.
const ReasonAccessChanged = "accessChanged"

// ListenOptions configure a listener.
type ListenOptions struct {
	// Filter is a GROQ filter (groq.ModeFilter: a pure function of one
	// document), for example _type == "post"; "" matches every document.
	Filter string
	// Params are the filter's $parameters.
	Params map[string]any
	// LastEventID resumes after that event ("txid#documentId"): everything
	// after it in the log is delivered, in order, once. "" starts at the
	// current end of the log.
	LastEventID string
	// Buffer is the number of events held for the listener (0 means
	// DefaultListenBuffer). When the hub has an event for a listener whose
	// buffer is full, the listener ends with listenerOverflow.
	Buffer int
	// Reauth authenticates the listener's credential again when access
	// changes: an error ends the listener (after disappear events for what
	// it could see). nil keeps the principal.
	Reauth func(ctx context.Context) (*authz.Principal, error)
	// Deliver, when set, is called with each event, in order, by the
	// goroutine of the fan-out, instead of queuing the event in Events
	// (which then only closes when the listener ends). It must not block:
	// it hands the event on (for example publishes it to NATS, whose
	// buffers then bound what is held for the listener) and returns false
	// when it cannot, which ends the listener with listenerOverflow.
	Deliver func(*ListenEvent) bool
}

// A ListenEvent is one event for a listener: a document's transition
// (Type mutation), or a filter that failed on a document (Type error).
// Events are shared by every listener of a group: never modify one.
type ListenEvent struct {
	Type string
	// EventID is "txid#documentId"; resuming from it continues after it.
	EventID       string
	DocumentID    string
	TransactionID string // "" for events a change of access caused
	Transition    string // appear, update or disappear
	Reason        string // ReasonAccessChanged, or ""
	Identity      string // who made the transaction
	// Mutations are the transaction's mutations that name this document
	// by id, when the listener may read the document after them (or it
	// was deleted); otherwise none, so that a mutation never shows content
	// the listener may not read.
	Mutations []json.RawMessage
	// Result is the document after the transaction (nil for disappear);
	// Previous is the document before it, when the listener could read it.
	Result, Previous       map[string]any
	ResultRev, PreviousRev string
	Timestamp              time.Time
	// TransactionTotalEvents counts the events the transaction gives this
	// listener; TransactionCurrentEvent is this one's 1-based position.
	TransactionTotalEvents, TransactionCurrentEvent int
	// Seq is the log position of the transaction (of the last one the hub
	// had handled, for events a change of access caused).
	Seq uint64
	// Err is the evaluation error of an error event.
	Err *Error

	index int // of the document among the transaction's effects

	enc [4]atomic.Pointer[[]byte] // JSON by include flags
}

// listenEventJSON is the wire form of a ListenEvent (Sanity's listener
// fields).
type listenEventJSON struct {
	Type                    string            `json:"type"`
	EventID                 string            `json:"eventId"`
	DocumentID              string            `json:"documentId"`
	TransactionID           string            `json:"transactionId,omitempty"`
	Transition              string            `json:"transition,omitempty"`
	Reason                  string            `json:"reason,omitempty"`
	Identity                string            `json:"identity,omitempty"`
	Mutations               []json.RawMessage `json:"mutations,omitempty"`
	Result                  *map[string]any   `json:"result,omitempty"`
	Previous                *map[string]any   `json:"previous,omitempty"`
	PreviousRev             string            `json:"previousRev,omitempty"`
	ResultRev               string            `json:"resultRev,omitempty"`
	Timestamp               string            `json:"timestamp"`
	TransactionTotalEvents  int               `json:"transactionTotalEvents,omitempty"`
	TransactionCurrentEvent int               `json:"transactionCurrentEvent,omitempty"`
	Error                   *Error            `json:"error,omitempty"`
}

// MarshalJSON encodes the event with result and previous (see
// EncodeJSON).
func (ev *ListenEvent) MarshalJSON() ([]byte, error) { return ev.EncodeJSON(true, true) }

// EncodeJSON returns the event's JSON; result (null for disappear) is
// present only with includeResult, previous only with includePrevious. The
// encoding is made once per pair of flags and shared: do not modify it.
func (ev *ListenEvent) EncodeJSON(includeResult, includePrevious bool) ([]byte, error) {
	k := 0
	if includeResult {
		k |= 1
	}
	if includePrevious {
		k |= 2
	}
	if b := ev.enc[k].Load(); b != nil {
		return *b, nil
	}
	w := listenEventJSON{
		Type: ev.Type, EventID: ev.EventID, DocumentID: ev.DocumentID, TransactionID: ev.TransactionID,
		Transition: ev.Transition, Reason: ev.Reason, Identity: ev.Identity, Mutations: ev.Mutations,
		PreviousRev: ev.PreviousRev, ResultRev: ev.ResultRev,
		Timestamp:               ev.Timestamp.UTC().Format(time.RFC3339Nano),
		TransactionTotalEvents:  ev.TransactionTotalEvents,
		TransactionCurrentEvent: ev.TransactionCurrentEvent,
		Error:                   ev.Err,
	}
	if includeResult && ev.Type == ListenMutation {
		r := ev.Result
		w.Result = &r
	}
	if includePrevious && ev.Type == ListenMutation {
		p := ev.Previous
		w.Previous = &p
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	ev.enc[k].Store(&b)
	return b, nil
}

// ListenStats counts a dataset's fan-out work since the engine opened it.
type ListenStats struct {
	Listeners int    // listeners now attached to the hub
	Commits   uint64 // commits the hub handled
	// LogCommits counts those the hub's Watcher read back from the log
	// rather than received live (it fell behind, or the commit became
	// durable before it was published).
	LogCommits uint64
	// ReadEvals and FilterEvals count read-access decisions and filter
	// evaluations (each one evaluation of a document version), by the hub,
	// catching-up listeners and access reconciliations.
	ReadEvals, FilterEvals uint64
	// MaxEvalsPerCommit is the most evaluations one commit needed in the
	// hub.
	MaxEvalsPerCommit uint64
	Events            uint64 // events handed to listeners
	Overflows         uint64 // listeners ended because their buffer was full
	Reconciliations   uint64 // changes of access the hub reconciled
}

type listenCounters struct {
	commits, logCommits, readEvals, filterEvals, maxEvals, events, overflows, reconciles atomic.Uint64
	listeners                                                                            atomic.Int64
}

// position is a point in a dataset's log: everything up to the effect
// index of event seq (index allEffects: the whole event) was handled.
type position struct {
	seq   uint64
	index int
}

const allEffects = math.MaxInt

func (p position) before(seq uint64, index int) bool {
	return seq > p.seq || seq == p.seq && index > p.index
}

// A Listener receives a dataset's document changes that its principal may
// read and its filter matches. Read Events until it is closed, then Err
// says why it ended.
type Listener struct {
	d       *dataset
	filter  *listenFilter
	reauth  func(ctx context.Context) (*authz.Principal, error)
	deliver func(*ListenEvent) bool
	ch      chan *ListenEvent
	stop    chan struct{}
	stopped sync.Once

	// Owned by the goroutine that feeds ch (a catch-up, then the hub).
	principal *authz.Principal
	start     position // deliver only what comes after
	sk, fk    string
	lastID    string
	group     *filterGroup

	stats *listenCounters
	last  atomic.Pointer[string] // lastID, for LastEventID
	err   atomic.Pointer[Error]  // set before ch is closed
}

// Events returns the listener's events. The channel is closed when the
// listener ends; then Err says why.
func (l *Listener) Events() <-chan *ListenEvent { return l.ch }

// Err returns why the listener ended (after Events is closed): canceled
// after Close, listenerOverflow for a slow listener, unauthorized when its
// credential was revoked, or the error that stopped the dataset's feed.
// Details["lastEventId"] is where to resume.
func (l *Listener) Err() *Error { return l.err.Load() }

// LastEventID returns the id of the last event handed to the listener
// ("" if none).
func (l *Listener) LastEventID() string {
	if p := l.last.Load(); p != nil {
		return *p
	}
	return ""
}

// Close ends the listener; Events is closed soon after.
func (l *Listener) Close() { l.stopped.Do(func() { close(l.stop) }) }

// end closes the listener's channel with err (by the goroutine feeding
// it).
func (l *Listener) end(err *Error) {
	if err.Details == nil {
		err.Details = map[string]any{}
	}
	err.Details["lastEventId"] = l.lastID
	l.err.Store(err)
	close(l.ch)
	l.Close()
}

// offer hands ev to the listener without waiting: false when its buffer is
// full.
func (l *Listener) offer(ev *ListenEvent) bool {
	if l.deliver != nil {
		if !l.deliver(ev) {
			return false
		}
		l.delivered(ev)
		return true
	}
	select {
	case l.ch <- ev:
		l.delivered(ev)
		return true
	default:
		return false
	}
}

// send hands ev to the listener, waiting for room: false when the
// listener was closed meanwhile (or, with ListenOptions.Deliver, when
// Deliver refused it).
func (l *Listener) send(ctx context.Context, ev *ListenEvent) bool {
	if l.deliver != nil {
		return !l.isStopped() && l.offer(ev)
	}
	select {
	case l.ch <- ev:
		l.delivered(ev)
		return true
	case <-l.stop:
		return false
	case <-ctx.Done():
		return false
	}
}

// overflowError is why a listener that did not keep up ends.
func overflowError(l *Listener) *Error {
	if l.deliver != nil {
		return errorf(CodeListenerOverflow, "the listener did not keep up: it could not take an event; resume from lastEventId")
	}
	return errorf(CodeListenerOverflow, "the listener did not keep up: its buffer of %d events was full; resume from lastEventId", cap(l.ch))
}

func (l *Listener) delivered(ev *ListenEvent) {
	l.lastID = ev.EventID
	id := ev.EventID
	l.last.Store(&id)
	l.stats.events.Add(1)
}

func (l *Listener) isStopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// listenFilter is a listener's compiled filter with its parameters.
type listenFilter struct {
	src          string
	prog         *groq.Program // nil: every document matches
	params       map[string]any
	usesIdentity bool
	key          string // src and params: equal keys evaluate alike
	// types, when not nil, are the only values of _type the filter can be
	// true for (it is a conjunction with a conjunct _type == "T" or
	// _type in [...]): the hub consults it only for documents of those
	// types.
	types []string
}

func compileListenFilter(src string, params map[string]any) (*listenFilter, error) {
	f := &listenFilter{src: src, params: params}
	pj, err := json.Marshal(params) // map keys sorted: canonical
	if err != nil {
		return nil, errorf(CodeInvalidRequest, "the listener's params are not JSON values: %v", err)
	}
	f.key = src + "\x00" + string(pj)
	if strings.TrimSpace(src) == "" {
		return f, nil
	}
	prog, err := groq.Compile(src, groq.ModeFilter)
	if err != nil {
		return nil, AsError(err)
	}
	for _, name := range prog.Params() {
		if _, ok := params[name]; !ok {
			return nil, &Error{Code: groq.CodeParseError, Description: "param $" + name + " referenced, but not provided", Details: map[string]any{"query": src}}
		}
	}
	f.prog = prog
	f.usesIdentity = true
	if n, err := syntax.Parse(src); err == nil {
		f.types, _ = groq.RequiredTypes(n)
		f.usesIdentity = groq.CallsIdentity(n)
	}
	return f, nil
}

// groupKey returns the key of a listener with identity's filter group.
func (f *listenFilter) groupKey(identity string) string {
	if f.usesIdentity {
		return f.key + "\x00" + identity
	}
	return f.key
}

// Listen starts a listener of dataset name for principal p. A filter that
// does not compile is a queryParseError or invalidFilter error; an unknown
// LastEventID is eventNotFound.
func (e *Engine) Listen(name string, p *authz.Principal, opts ListenOptions) (*Listener, error) {
	d, err := e.dataset(name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = authz.Anonymous()
	}
	f, err := compileListenFilter(opts.Filter, opts.Params)
	if err != nil {
		return nil, err
	}
	start, err := d.resumePosition(opts.LastEventID)
	if err != nil {
		return nil, err
	}
	n := opts.Buffer
	if n <= 0 {
		n = DefaultListenBuffer
	}
	l := &Listener{
		d: d, filter: f, reauth: opts.Reauth, deliver: opts.Deliver, principal: p, start: start,
		ch: make(chan *ListenEvent, n), stop: make(chan struct{}),
		lastID: opts.LastEventID, stats: d.listenStats(),
	}
	if l.lastID != "" {
		id := l.lastID
		l.last.Store(&id)
	}
	d.join(l)
	return l, nil
}

// resumePosition maps a last event id to the log position after which a
// listener continues.
func (d *dataset) resumePosition(id string) (position, error) {
	if id == "" {
		return position{seq: d.w.durable.Load(), index: allEffects}, nil
	}
	i := strings.LastIndexByte(id, '#')
	if i <= 0 {
		return position{}, errorf(eventlog.CodeEventNotFound, "last event id %q is not of the form <transactionId>#<documentId>", id)
	}
	txid, docID := id[:i], id[i+1:]
	seq, ok, err := d.log.LookupTx(txid)
	if err != nil {
		return position{}, AsError(err)
	}
	if !ok {
		return position{}, errorf(eventlog.CodeEventNotFound, "last event id %q: transaction %q is not in dataset %q's log", id, txid, d.name)
	}
	ev, err := d.log.Get(seq)
	if err != nil {
		return position{}, AsError(err)
	}
	for k := range ev.Effects {
		if ev.Effects[k].DocID == docID {
			return position{seq: seq, index: k}, nil
		}
	}
	// Not an effect of the transaction (an event a change of access
	// caused): continue after the whole transaction.
	return position{seq: seq, index: allEffects}, nil
}

// ListenStats returns the fan-out counters of dataset name.
func (e *Engine) ListenStats(name string) (ListenStats, error) {
	d, err := e.dataset(name)
	if err != nil {
		return ListenStats{}, err
	}
	c := d.listenStats()
	return ListenStats{
		Listeners:         int(c.listeners.Load()),
		Commits:           c.commits.Load(),
		LogCommits:        c.logCommits.Load(),
		ReadEvals:         c.readEvals.Load(),
		FilterEvals:       c.filterEvals.Load(),
		MaxEvalsPerCommit: c.maxEvals.Load(),
		Events:            c.events.Load(),
		Overflows:         c.overflows.Load(),
		Reconciliations:   c.reconciles.Load(),
	}, nil
}

// The hubs and counters of the datasets, by dataset. The keys are weak so
// that a closed engine's datasets are not kept alive by them.
var hubs = struct {
	sync.Mutex
	running map[weak.Pointer[dataset]]*hub
}{running: map[weak.Pointer[dataset]]*hub{}}

var listenCounterMap = struct {
	sync.Mutex
	m map[weak.Pointer[dataset]]*listenCounters
}{m: map[weak.Pointer[dataset]]*listenCounters{}}

func (d *dataset) listenStats() *listenCounters {
	k := weak.Make(d)
	listenCounterMap.Lock()
	defer listenCounterMap.Unlock()
	c := listenCounterMap.m[k]
	if c == nil {
		c = &listenCounters{}
		listenCounterMap.m[k] = c
	}
	return c
}

// join hands l to the dataset's hub, starting one (at l's position) if
// none runs.
func (d *dataset) join(l *Listener) {
	k := weak.Make(d)
	hubs.Lock()
	h := hubs.running[k]
	if h == nil {
		h = d.newHub(l.start)
		hubs.running[k] = h
		go h.run()
	}
	h.mu.Lock()
	h.joins = append(h.joins, l)
	h.mu.Unlock()
	hubs.Unlock()
	h.poke()
}

// hub fans one dataset's commits out to its listeners.
type hub struct {
	d      *dataset
	stats  *listenCounters
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // guards joins
	joins  []*Listener
	signal chan struct{}

	// Owned by the hub goroutine.
	pos     uint64 // last commit handled
	lastTx  string // its transaction id
	pol     *authz.Policy
	polGen  uint64 // pol's generation: the hub never moves to an older one
	shares  map[string]*shareGroup
	n       int // listeners attached
	commits chan watched1
	cache   *versionCache
}

type watched1 struct {
	c   *Commit
	err error
}

// shareGroup is the listeners whose principals have one ShareKey.
type shareGroup struct {
	key     string
	rep     *authz.Principal // any of them: they decide alike
	filters map[string]*filterGroup
	// The filter groups by the _type values their filter requires, and
	// those whose filter requires none: a commit is decided only for the
	// groups its documents' types can concern.
	byType  map[string]map[*filterGroup]struct{}
	untyped map[*filterGroup]struct{}
}

func (sg *shareGroup) index(fg *filterGroup, add bool) {
	sets := []map[*filterGroup]struct{}{sg.untyped}
	if fg.filter.types != nil {
		sets = sets[:0]
		for _, t := range fg.filter.types {
			if sg.byType[t] == nil {
				sg.byType[t] = map[*filterGroup]struct{}{}
			}
			sets = append(sets, sg.byType[t])
		}
	}
	for _, set := range sets {
		if add {
			set[fg] = struct{}{}
		} else {
			delete(set, fg)
		}
	}
}

// candidates returns the filter groups whose filter may match a version
// of c's documents.
func (sg *shareGroup) candidates(c *Commit) map[*filterGroup]struct{} {
	if len(sg.byType) == 0 {
		return sg.untyped
	}
	var out map[*filterGroup]struct{}
	if len(sg.untyped) > 0 {
		out = maps.Clone(sg.untyped)
	} else if len(c.Docs) == 1 && (c.Docs[0].Before == nil || c.Docs[0].After == nil || c.Docs[0].Before["_type"] == c.Docs[0].After["_type"]) {
		// The common case: one document of one type.
		doc := c.Docs[0].After
		if doc == nil {
			doc = c.Docs[0].Before
		}
		t, _ := doc["_type"].(string)
		return sg.byType[t]
	} else {
		out = map[*filterGroup]struct{}{}
	}
	for i := range c.Docs {
		for _, doc := range []map[string]any{c.Docs[i].Before, c.Docs[i].After} {
			if t, ok := doc["_type"].(string); ok {
				for fg := range sg.byType[t] {
					out[fg] = struct{}{}
				}
			}
		}
	}
	return out
}

// filterGroup is a share group's listeners with one filter key; they all
// receive the same events.
type filterGroup struct {
	key       string
	filter    *listenFilter
	identity  string
	listeners map[*Listener]struct{}
}

func (d *dataset) newHub(start position) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	pos := start.seq
	if start.index != allEffects && pos > 0 {
		pos-- // the hub handles the event, the listener skips its first effects
	}
	h := &hub{
		d: d, stats: d.listenStats(), ctx: ctx, cancel: cancel,
		signal: make(chan struct{}, 1),
		pos:    pos, shares: map[string]*shareGroup{},
		commits: make(chan watched1, 64),
		cache:   newVersionCache(4096),
	}
	h.pol, h.polGen = d.policyNow()
	if pos > 0 {
		if ev, err := d.log.Get(pos); err == nil {
			h.lastTx = ev.TxID
		}
	}
	return h
}

func (h *hub) poke() {
	select {
	case h.signal <- struct{}{}:
	default:
	}
}

func (h *hub) run() {
	w, err := h.d.e.Watch(h.d.name, h.pos, WatchOptions{})
	if err == nil {
		go func() {
			defer w.Close()
			for {
				c, err := w.Next(h.ctx)
				select {
				case h.commits <- watched1{c, err}:
				case <-h.ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	defer h.cancel()
	access := h.d.e.AccessChanged()
	tick := time.NewTicker(time.Second) // frees closed listeners that get no event
	defer tick.Stop()
	for {
		if err != nil {
			h.endAll(AsError(err))
		}
		h.takeJoins()
		if h.n == 0 && h.retire() {
			return
		}
		select {
		case wc := <-h.commits:
			if wc.err != nil {
				err = wc.err
				continue
			}
			h.handle(wc.c)
		case <-access:
			access = h.d.e.AccessChanged()
			h.accessChanged()
		case <-h.signal:
		case <-tick.C:
			h.dropStopped()
		}
	}
}

// accessChanged handles the engine's signal that access changed: a group,
// the acl or a token. The signal may come before the hub has handled the
// commits that changed the policy, or after them; the hub takes the newer
// of the policy it holds and the dataset's, never an older one, which would
// show again what a later commit hid. Its listeners authenticate again.
func (h *hub) accessChanged() {
	pol, gen := h.d.policyNow()
	if gen < h.polGen {
		pol, gen = h.pol, h.polGen
	}
	h.switchAccess(pol, gen, true)
}

// retire removes the hub when it has no listener and none is joining.
func (h *hub) retire() bool {
	hubs.Lock()
	defer hubs.Unlock()
	h.mu.Lock()
	pending := len(h.joins)
	h.mu.Unlock()
	if pending > 0 {
		return false
	}
	k := weak.Make(h.d)
	if hubs.running[k] == h {
		delete(hubs.running, k)
	}
	return true
}

// endAll ends every listener with err (the feed failed).
func (h *hub) endAll(err *Error) {
	for _, sg := range h.shares {
		for _, fg := range sg.filters {
			for l := range fg.listeners {
				h.detach(l)
				l.end(err)
			}
		}
	}
	h.mu.Lock()
	joins := h.joins
	h.joins = nil
	h.mu.Unlock()
	for _, l := range joins {
		l.end(err)
	}
}

// takeJoins attaches the listeners waiting to join: those at or after the
// hub's position directly, the others after a catch-up of their own.
func (h *hub) takeJoins() {
	h.mu.Lock()
	joins := h.joins
	h.joins = nil
	h.mu.Unlock()
	for _, l := range joins {
		switch {
		case l.isStopped():
			l.end(errorf(CodeCanceled, "the listener was closed"))
		case l.start.seq > h.pos || l.start.seq == h.pos && l.start.index == allEffects:
			h.attach(l)
		default:
			go l.catchUp(h.pos)
		}
	}
}

// attach adds l to its groups under the hub's policy.
func (h *hub) attach(l *Listener) {
	chk := h.pol.Checker(l.principal, time.Now())
	l.sk = chk.ShareKey()
	l.fk = l.filter.groupKey(l.principal.Identity())
	sg := h.shares[l.sk]
	if sg == nil {
		sg = &shareGroup{key: l.sk, rep: l.principal, filters: map[string]*filterGroup{},
			byType: map[string]map[*filterGroup]struct{}{}, untyped: map[*filterGroup]struct{}{}}
		h.shares[l.sk] = sg
	}
	fg := sg.filters[l.fk]
	if fg == nil {
		fg = &filterGroup{key: l.fk, filter: l.filter, identity: l.principal.Identity(), listeners: map[*Listener]struct{}{}}
		sg.filters[l.fk] = fg
		sg.index(fg, true)
	}
	fg.listeners[l] = struct{}{}
	l.group = fg
	h.n++
	h.stats.listeners.Add(1)
}

func (h *hub) detach(l *Listener) {
	sg := h.shares[l.sk]
	if sg == nil {
		return
	}
	fg := sg.filters[l.fk]
	if fg == nil {
		return
	}
	if _, ok := fg.listeners[l]; !ok {
		return
	}
	delete(fg.listeners, l)
	if len(fg.listeners) == 0 {
		delete(sg.filters, l.fk)
		sg.index(fg, false)
	}
	if len(sg.filters) == 0 {
		delete(h.shares, l.sk)
	} else if sg.rep == l.principal {
	pick:
		for _, fg := range sg.filters {
			for o := range fg.listeners {
				sg.rep = o.principal
				break pick
			}
		}
	}
	h.n--
	h.stats.listeners.Add(-1)
}

// dropStopped ends the listeners that were closed.
func (h *hub) dropStopped() {
	for _, sg := range h.shares {
		for _, fg := range sg.filters {
			for l := range fg.listeners {
				if l.isStopped() {
					h.detach(l)
					l.end(errorf(CodeCanceled, "the listener was closed"))
				}
			}
		}
	}
}

// handle fans commit c out, then switches to the policy after it.
func (h *hub) handle(c *Commit) {
	ev := evaluation{d: h.d, stats: h.stats, pol: h.pol, cache: h.cache}
	for _, sg := range h.shares {
		for fg := range sg.candidates(c) {
			ev.fanOut(c, sg, fg, func(l *Listener, e *ListenEvent) {
				if !l.start.before(e.Seq, e.index) {
					return
				}
				if l.isStopped() {
					h.detach(l)
					l.end(errorf(CodeCanceled, "the listener was closed"))
					return
				}
				if !l.offer(e) {
					h.detach(l)
					h.stats.overflows.Add(1)
					l.end(overflowError(l))
				}
			})
		}
	}
	n := ev.reads + ev.filters
	h.stats.commits.Add(1)
	if !c.Live {
		h.stats.logCommits.Add(1)
	}
	for {
		m := h.stats.maxEvals.Load()
		if n <= m || h.stats.maxEvals.CompareAndSwap(m, n) {
			break
		}
	}
	h.pos = c.Event.Seq
	h.lastTx = c.Event.TxID
	target, gen := c.Policy, c.policyGen
	if target == nil {
		target, gen = h.d.policyNow()
	}
	if gen > h.polGen {
		h.switchAccess(target, gen, false)
	}
}

// evaluation decides one commit's documents for listener groups, sharing
// every decision it can: per document version, a filter is evaluated once
// per filter key and read access once per share key.
type evaluation struct {
	d     *dataset
	stats *listenCounters
	pol   *authz.Policy
	cache *versionCache // may be nil

	c        *Commit
	vers     []docVersions
	checkers map[string]*authz.Checker
	muts     [][]json.RawMessage // per effect, lazily
	mutsDone bool
	reads    uint64
	filters  uint64
}

type docVersions struct{ before, after *version }

// version is one document version and the decisions made about it.
type version struct {
	doc   map[string]any
	read  map[string]bool
	match map[string]matchResult
}

type matchResult struct {
	ok  bool
	err *Error
}

func (ev *evaluation) begin(c *Commit) {
	if ev.c == c {
		return
	}
	ev.c = c
	ev.checkers = map[string]*authz.Checker{}
	ev.vers = make([]docVersions, len(c.Docs))
	ev.muts, ev.mutsDone = nil, false
	for i, cd := range c.Docs {
		ev.vers[i].before = ev.cache.lookup(cd.ID, cd.Before)
		ev.vers[i].after = newVersion(cd.After)
		ev.cache.store(cd.ID, ev.vers[i].after)
	}
}

func newVersion(doc map[string]any) *version {
	return &version{doc: doc, read: map[string]bool{}, match: map[string]matchResult{}}
}

func (ev *evaluation) checker(sg *shareGroup) *authz.Checker {
	chk := ev.checkers[sg.key]
	if chk == nil {
		chk = ev.pol.Checker(sg.rep, ev.c.Event.Time)
		ev.checkers[sg.key] = chk
	}
	return chk
}

func (ev *evaluation) readable(v *version, sg *shareGroup) bool {
	if v.doc == nil {
		return false
	}
	ok, done := v.read[sg.key]
	if !done {
		_, ok = ev.checker(sg).Read(v.doc)
		v.read[sg.key] = ok
		ev.reads++
		ev.stats.readEvals.Add(1)
	}
	return ok
}

func (ev *evaluation) matches(v *version, fg *filterGroup, now time.Time) matchResult {
	if v.doc == nil {
		return matchResult{}
	}
	if fg.filter.prog == nil {
		return matchResult{ok: true}
	}
	if ts := fg.filter.types; ts != nil {
		if t, ok := v.doc["_type"].(string); !ok || !slices.Contains(ts, t) {
			return matchResult{}
		}
	}
	r, done := v.match[fg.key]
	if !done {
		env := &groq.Env{Identity: fg.identity, Now: now, Params: fg.filter.params}
		ok, err := fg.filter.prog.Match(env, v.doc)
		r = matchResult{ok: ok}
		if err != nil {
			r = matchResult{err: AsError(err)}
		}
		v.match[fg.key] = r
		ev.filters++
		ev.stats.filterEvals.Add(1)
	}
	return r
}

// visible reports whether v is readable by sg and matches fg's filter
// (the filter first: it is what most often rules a document out).
func (ev *evaluation) visible(v *version, sg *shareGroup, fg *filterGroup) (bool, *Error) {
	m := ev.matches(v, fg, ev.c.Event.Time)
	if m.err != nil {
		return false, m.err
	}
	return m.ok && ev.readable(v, sg), nil
}

// mutationsOf returns the transaction's mutations that name document id.
func (ev *evaluation) mutationsOf(i int) []json.RawMessage {
	if !ev.mutsDone {
		ev.mutsDone = true
		ev.muts = make([][]json.RawMessage, len(ev.c.Docs))
		var list []json.RawMessage
		if json.Unmarshal(ev.c.Event.Mutations, &list) == nil {
			for _, m := range list {
				id := mutationTarget(m)
				for k := range ev.c.Docs {
					if id != "" && ev.c.Docs[k].ID == id {
						ev.muts[k] = append(ev.muts[k], m)
					}
				}
			}
		}
	}
	return ev.muts[i]
}

// mutationTarget returns the document id a mutation names: the _id of a
// create, or the id of a patch or delete by id ("" for one by query).
func mutationTarget(m json.RawMessage) string {
	var one map[string]struct {
		ID    string `json:"id"`
		DocID string `json:"_id"`
	}
	if json.Unmarshal(m, &one) != nil || len(one) != 1 {
		return ""
	}
	for op, b := range one {
		switch op {
		case "create", "createOrReplace", "createIfNotExists":
			return b.DocID
		case "patch", "delete":
			return b.ID
		}
	}
	return ""
}

// fanOut decides commit c for the listeners of fg (in sg) and calls
// deliver, in effect order, with the events they get.
func (ev *evaluation) fanOut(c *Commit, sg *shareGroup, fg *filterGroup, deliver func(*Listener, *ListenEvent)) {
	if len(fg.listeners) == 0 {
		return
	}
	ev.begin(c)
	type pending struct {
		i          int
		transition string
		err        *Error
	}
	var out []pending
	for i := range c.Docs {
		vb, va := ev.vers[i].before, ev.vers[i].after
		was, errB := ev.visible(vb, sg, fg)
		is, errA := ev.visible(va, sg, fg)
		if err := errA; err != nil || errB != nil {
			if err == nil {
				err = errB
			}
			out = append(out, pending{i: i, err: err})
		}
		switch {
		case was && is:
			out = append(out, pending{i: i, transition: TransitionUpdate})
		case is:
			out = append(out, pending{i: i, transition: TransitionAppear})
		case was:
			out = append(out, pending{i: i, transition: TransitionDisappear})
		}
	}
	total := 0
	for _, p := range out {
		if p.err == nil {
			total++
		}
	}
	cur := 0
	for _, p := range out {
		cd := &c.Docs[p.i]
		e := &ListenEvent{
			EventID: c.Event.TxID + "#" + cd.ID, DocumentID: cd.ID, TransactionID: c.Event.TxID,
			Identity: c.Event.Identity, Timestamp: c.Event.Time, Seq: c.Event.Seq, index: p.i,
		}
		if p.err != nil {
			e.Type, e.Err = ListenError, p.err
		} else {
			cur++
			e.Type, e.Transition = ListenMutation, p.transition
			e.TransactionTotalEvents, e.TransactionCurrentEvent = total, cur
			vb, va := ev.vers[p.i].before, ev.vers[p.i].after
			afterReadable := ev.readable(va, sg)
			if p.transition != TransitionDisappear {
				e.Result = va.doc
			}
			if afterReadable {
				e.ResultRev, _ = va.doc["_rev"].(string)
			}
			if ev.readable(vb, sg) {
				e.Previous = vb.doc
				e.PreviousRev, _ = vb.doc["_rev"].(string)
			}
			if va.doc == nil || afterReadable {
				e.Mutations = ev.mutationsOf(p.i)
			}
		}
		for l := range fg.listeners {
			deliver(l, e)
		}
	}
}

// versionCache keeps the decisions about recent document versions, so the
// version a commit replaces (its "before", the "after" of an earlier
// commit) is not evaluated twice. Keyed by id and _rev; bounded (oldest
// out first); cleared when the policy changes.
type versionCache struct {
	max   int
	m     map[string]*version
	order []string
	next  int
}

func newVersionCache(max int) *versionCache {
	return &versionCache{max: max, m: make(map[string]*version, max), order: make([]string, max)}
}

func versionKey(id string, doc map[string]any) (string, bool) {
	rev, ok := doc["_rev"].(string)
	return id + "\x00" + rev, ok && rev != ""
}

func (vc *versionCache) lookup(id string, doc map[string]any) *version {
	if vc == nil || doc == nil {
		return newVersion(doc)
	}
	if k, ok := versionKey(id, doc); ok {
		if v := vc.m[k]; v != nil {
			return v
		}
	}
	return newVersion(doc)
}

func (vc *versionCache) store(id string, v *version) {
	if vc == nil || v.doc == nil {
		return
	}
	k, ok := versionKey(id, v.doc)
	if !ok {
		return
	}
	if old := vc.order[vc.next]; old != "" {
		delete(vc.m, old)
	}
	vc.order[vc.next] = k
	vc.m[k] = v
	vc.next = (vc.next + 1) % vc.max
}

func (vc *versionCache) clear() {
	clear(vc.m)
	clear(vc.order)
	vc.next = 0
}

// catchUp feeds l alone from the log, from its position until it reaches
// the hub (whose position was at least hubPos), then joins the hub again.
func (l *Listener) catchUp(hubPos uint64) {
	d := l.d
	after := l.start.seq
	if l.start.index != allEffects && after > 0 {
		after--
	}
	w, err := d.e.Watch(d.name, after, WatchOptions{Buffer: 1})
	if err != nil {
		l.end(AsError(err))
		return
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	stats := d.listenStats()
	access := d.e.AccessChanged()
	for {
		if l.isStopped() {
			l.end(errorf(CodeCanceled, "the listener was closed"))
			return
		}
		if l.start.index == allEffects && (l.start.seq >= hubPos || l.start.seq >= d.w.durable.Load()) {
			break // the hub takes over from here (or sends it back here)
		}
		select {
		case <-access:
			access = d.e.AccessChanged()
			if l.reauth != nil {
				p, err := l.reauth(ctx)
				if err != nil {
					l.end(AsError(err))
					return
				}
				l.principal = p
			}
		default:
		}
		c, err := w.Next(ctx)
		if err != nil {
			if l.isStopped() {
				l.end(errorf(CodeCanceled, "the listener was closed"))
			} else {
				l.end(AsError(err))
			}
			return
		}
		pol := c.Policy
		if pol == nil {
			pol = d.policy.Load()
		}
		sg := &shareGroup{key: "solo", rep: l.principal}
		fg := &filterGroup{key: "solo", filter: l.filter, identity: l.principal.Identity(), listeners: map[*Listener]struct{}{l: {}}}
		ev := evaluation{d: d, stats: stats, pol: pol}
		ok := true
		ev.fanOut(c, sg, fg, func(l *Listener, e *ListenEvent) {
			if ok && l.start.before(e.Seq, e.index) {
				ok = l.send(ctx, e)
			}
		})
		if !ok {
			if l.isStopped() {
				l.end(errorf(CodeCanceled, "the listener was closed"))
			} else {
				stats.overflows.Add(1)
				l.end(overflowError(l))
			}
			return
		}
		l.start = position{seq: c.Event.Seq, index: allEffects}
	}
	d.join(l)
}

// switchAccess moves the hub to policy pol (and, with reauth, to the
// principals its listeners' credentials give now), reconciling what every
// listener sees.
func (h *hub) switchAccess(pol *authz.Policy, gen uint64, reauth bool) {
	h.stats.reconciles.Add(1)
	old := h.pol
	now := time.Now()
	type change struct {
		l      *Listener
		p      *authz.Principal // nil: the credential no longer authenticates
		err    *Error
		oldChk *authz.Checker
		newChk *authz.Checker
	}
	var changes []change
	for _, sg := range h.shares {
		for _, fg := range sg.filters {
			for l := range fg.listeners {
				ch := change{l: l, p: l.principal}
				if reauth && l.reauth != nil {
					ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
					p, err := l.reauth(ctx)
					cancel()
					if err != nil {
						ch.p, ch.err = nil, AsError(err)
					} else {
						ch.p = p
					}
				}
				changes = append(changes, ch)
			}
		}
	}
	// Group the listeners by (old share key, new share key, filter key):
	// each such triple is reconciled once.
	type triple struct {
		oldSK, newSK, fk string
		oldSG, newSG     *shareGroup
		fg               *filterGroup
		listeners        []*Listener
		oldChk, newChk   *authz.Checker
	}
	triples := map[string]*triple{}
	for i := range changes {
		ch := &changes[i]
		oc := old.Checker(ch.l.principal, now)
		newSK := "\x00revoked"
		var nc *authz.Checker
		if ch.p != nil {
			nc = pol.Checker(ch.p, now)
			newSK = nc.ShareKey()
		}
		if pol == old && newSK == ch.l.sk {
			continue // nothing changed for it
		}
		k := ch.l.sk + "\x01" + newSK + "\x01" + ch.l.fk
		t := triples[k]
		if t == nil {
			t = &triple{oldSK: ch.l.sk, newSK: newSK, fk: ch.l.fk, fg: ch.l.group, oldChk: oc, newChk: nc}
			triples[k] = t
		}
		t.listeners = append(t.listeners, ch.l)
	}
	if len(triples) > 0 {
		h.reconcile(func(yield func(id string, doc map[string]any)) error {
			return h.d.scanDocuments(yield)
		}, func(doc map[string]any, id string, matchMemo map[string]matchResult) {
			for _, t := range triples {
				m, done := matchMemo[t.fk]
				if !done {
					v := newVersion(doc)
					ev := evaluation{d: h.d, stats: h.stats}
					m = ev.matches(v, t.fg, now)
					matchMemo[t.fk] = m
				}
				if !m.ok {
					continue
				}
				h.stats.readEvals.Add(1)
				_, was := t.oldChk.Read(doc)
				is := false
				if t.newChk != nil {
					h.stats.readEvals.Add(1)
					_, is = t.newChk.Read(doc)
				}
				if was == is {
					continue
				}
				e := &ListenEvent{Type: ListenMutation, EventID: h.lastTx + "#" + id, DocumentID: id,
					Reason: ReasonAccessChanged, Timestamp: now, Seq: h.pos, TransactionTotalEvents: 1, TransactionCurrentEvent: 1}
				if is {
					e.Transition = TransitionAppear
					e.Result = doc
					e.ResultRev, _ = doc["_rev"].(string)
				} else {
					e.Transition = TransitionDisappear
				}
				for _, l := range t.listeners {
					if l.isStopped() {
						continue
					}
					if !l.offer(e) {
						h.detach(l)
						h.stats.overflows.Add(1)
						l.end(overflowError(l))
					}
				}
			}
		})
	}
	// Regroup every listener under the new policy and principals.
	for i := range changes {
		ch := &changes[i]
		if ch.l.group == nil {
			continue
		}
		if _, ok := ch.l.group.listeners[ch.l]; !ok {
			continue // ended meanwhile (overflow)
		}
		h.detach(ch.l)
		if ch.p == nil {
			ch.l.end(&Error{Code: "unauthorized", Description: "the listener's credential is no longer valid: " + ch.err.Description})
			continue
		}
		ch.l.principal = ch.p
	}
	h.pol, h.polGen = pol, gen
	h.cache.clear()
	for i := range changes {
		ch := &changes[i]
		if ch.p != nil && !ch.l.isStopped() && ch.l.err.Load() == nil {
			h.attach(ch.l)
		}
	}
}

// reconcile scans the documents and calls judge for each.
func (h *hub) reconcile(scan func(func(string, map[string]any)) error, judge func(doc map[string]any, id string, memo map[string]matchResult)) {
	err := scan(func(id string, doc map[string]any) {
		judge(doc, id, map[string]matchResult{})
	})
	if err != nil {
		h.d.e.logger.Error("listeners: reconciling a change of access", "dataset", h.d.name, "err", err)
	}
}

// scanDocuments calls fn with every current document of the dataset.
func (d *dataset) scanDocuments(fn func(id string, doc map[string]any)) error {
	d.rebuild.RLock()
	defer d.rebuild.RUnlock()
	return d.store.Scan(projection.Raw, func(id string, raw []byte) error {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return err
		}
		fn(id, doc)
		return nil
	})
}
