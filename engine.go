package vellum

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/eventlog"
	"github.com/vellum-db/vellum/projection"
	"github.com/vellum-db/vellum/projection/docid"
)

// DefaultMaxDocumentSize is the largest document, serialized, that a
// transaction may write unless Options says otherwise.
const DefaultMaxDocumentSize = 32 << 20

// Options configure an Engine. The zero value is usable.
type Options struct {
	// MaxDocumentSize is the largest serialized document a transaction may
	// write, in bytes; 0 means DefaultMaxDocumentSize.
	MaxDocumentSize int
	// Logger receives the engine's structured logs; nil means slog.Default().
	Logger *slog.Logger
	// ReadOnly refuses every write (transactions, dataset creation, token
	// and acl changes) with a readOnly error; reads work as usual. vellumd
	// --read-only sets it to serve a copy made by replay (docs/export-replay.md).
	ReadOnly bool
}

// Engine is an open Vellum store: one Pebble database holding the event log
// and the projections of every dataset.
type Engine struct {
	db       *eventlog.DB
	logger   *slog.Logger
	maxDoc   int
	readOnly bool
	system   *dataset // the registry of datasets, itself an audited dataset
	mu       sync.RWMutex
	byName   map[string]*dataset
	closed   bool
	closeMu  sync.Mutex

	tokens  atomic.Pointer[authz.TokenMap] // robot tokens by hash
	tokenMu sync.Mutex                     // serializes token changes

	access accessNotifier // tells listeners that access changed

	// authzOff skips write authorization; only benchmarks set it, to
	// measure what authorization costs.
	authzOff bool
}

// DatasetInfo describes a dataset.
type DatasetInfo struct {
	Name      string    `json:"name"`
	ACL       string    `json:"aclMode"` // "public" or "private"
	CreatedAt time.Time `json:"createdAt"`
}

// dataset is one dataset's log, projections and writer.
type dataset struct {
	e     *Engine
	name  string
	num   uint32
	info  DatasetInfo
	log   *eventlog.Log
	store *projection.Store
	w     *writer

	// policy is the dataset's access policy: its acl and group documents.
	// The writer replaces it when a transaction changes a group, SetACL
	// when the acl changes; each replacement (setPolicy) increments
	// policyGen, so that listeners can tell an older policy from a newer
	// one (policyNow).
	policy    atomic.Pointer[authz.Policy]
	policyGen atomic.Uint64

	// rebuild is held exclusively while the projections are rebuilt and
	// shared by reads, so no read sees a half-built projection. (Writes
	// are already stopped: a rebuild runs in the dataset's writer.)
	rebuild sync.RWMutex

	feed feed // durable commits, to the dataset's watchers
}

// systemDataset is the number of the dataset that records the other
// datasets (and, with access control, tokens). Its documents are
// "dataset.<name>" records of type system.dataset.
const (
	systemDataset     uint32 = 0
	systemDatasetName        = "_system"
	datasetDocPrefix         = "dataset."
	datasetDocType           = "system.dataset"
)

var datasetNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Open opens (or creates) the store in dir. A store that was not closed
// cleanly needs nothing more than this: the log and the projections are
// written in the same synced batches, so they are consistent on reopen.
func Open(dir string, opts Options) (*Engine, error) {
	e := &Engine{
		logger:   opts.Logger,
		maxDoc:   opts.MaxDocumentSize,
		byName:   map[string]*dataset{},
		readOnly: opts.ReadOnly,
	}
	e.access.init()
	if e.logger == nil {
		e.logger = slog.Default()
	}
	if e.maxDoc <= 0 {
		e.maxDoc = DefaultMaxDocumentSize
	}
	db, err := eventlog.Open(dir, nil)
	if err != nil {
		return nil, err
	}
	e.db = db
	sys, err := e.openDataset(systemDatasetName, systemDataset, DatasetInfo{Name: systemDatasetName, ACL: "private"})
	if err != nil {
		db.Close()
		return nil, err
	}
	e.system = sys
	if err := e.loadDatasets(); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.loadTokens(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Engine) openDataset(name string, num uint32, info DatasetInfo) (*dataset, error) {
	d := &dataset{e: e, name: name, num: num, info: info, log: e.db.Log(num)}
	store, err := projection.Open(e.db, num)
	if err != nil {
		return nil, fmt.Errorf("dataset %q: %w", name, err)
	}
	d.store = store
	if err := d.loadPolicy(); err != nil {
		return nil, fmt.Errorf("dataset %q: loading its groups: %w", name, err)
	}
	seq, hash, err := d.log.Head()
	if err != nil {
		return nil, fmt.Errorf("dataset %q: reading the log head: %w", name, err)
	}
	var last time.Time
	if seq > 0 {
		ev, err := d.log.Get(seq)
		if err != nil {
			return nil, fmt.Errorf("dataset %q: reading event %d: %w", name, seq, err)
		}
		last = ev.Time
	}
	d.w = newWriter(d, e.db.Pebble(), seq, hash, last)
	return d, nil
}

// datasetRecord is the document that registers a dataset in the system
// dataset.
type datasetRecord struct {
	ID        string `json:"_id"`
	Name      string `json:"name"`
	ACL       string `json:"aclMode"`
	Number    uint32 `json:"number"`
	CreatedAt string `json:"_createdAt"`
}

func (e *Engine) loadDatasets() error {
	var recs []datasetRecord
	err := e.system.store.ScanPrefix(datasetDocPrefix, func(id string, doc []byte) error {
		var r datasetRecord
		if err := json.Unmarshal(doc, &r); err != nil {
			return fmt.Errorf("dataset record %q: %w", id, err)
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		d, err := e.openRecord(r)
		if err != nil {
			return err
		}
		e.byName[r.Name] = d // Open has not returned yet: nobody else sees e
	}
	return nil
}

// openRecord opens the dataset a record of the system dataset registers.
func (e *Engine) openRecord(r datasetRecord) (*dataset, error) {
	created, _ := time.Parse(time.RFC3339Nano, r.CreatedAt)
	return e.openDataset(r.Name, r.Number, DatasetInfo{Name: r.Name, ACL: r.ACL, CreatedAt: created})
}

// Close stops every writer (answering queued transactions with an error) and
// closes the store.
func (e *Engine) Close() error {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	e.mu.Lock()
	all := make([]*dataset, 0, len(e.byName)+1)
	for _, d := range e.byName {
		all = append(all, d)
	}
	e.mu.Unlock()
	if e.system != nil {
		all = append(all, e.system)
	}
	for _, d := range all {
		d.w.close()
	}
	return e.db.Close()
}

func (e *Engine) dataset(name string) (*dataset, error) {
	e.mu.RLock()
	d := e.byName[name]
	e.mu.RUnlock()
	if d == nil {
		return nil, errorf(CodeUnknownDataset, "dataset %q does not exist; create it with `vellum dataset create %s`", name, name)
	}
	return d, nil
}

// CreateDataset creates a dataset. acl is "public" (everyone may read
// documents on the root path once access control applies) or "private"; ""
// means public, as in Sanity. Creating a dataset is itself a transaction in
// the system dataset, so it is recorded and audited like any other write.
func (e *Engine) CreateDataset(ctx context.Context, p *authz.Principal, name, acl string) (DatasetInfo, error) {
	if err := e.writable("create a dataset"); err != nil {
		return DatasetInfo{}, err
	}
	if err := requireAdmin(p, "create datasets"); err != nil {
		return DatasetInfo{}, err
	}
	if !datasetNameRE.MatchString(name) {
		return DatasetInfo{}, errorf(CodeInvalidDatasetName, "invalid dataset name %q: use 1 to 64 lowercase letters, digits, '_' and '-', starting with a letter or digit", name)
	}
	switch acl {
	case "":
		acl = "public"
	case "public", "private":
	default:
		return DatasetInfo{}, errorf(CodeInvalidACL, "invalid acl mode %q: use public or private", acl)
	}
	// Creations are serialized so that dataset numbers are allocated once.
	e.mu.Lock()
	if _, ok := e.byName[name]; ok {
		e.mu.Unlock()
		return DatasetInfo{}, errorf(CodeDatasetExists, "dataset %q already exists", name)
	}
	num := uint32(1)
	for _, d := range e.byName {
		if d.num >= num {
			num = d.num + 1
		}
	}
	// Hold the lock across the write: a concurrent creation of the same name
	// must see this one.
	defer e.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"mutations": []any{map[string]any{"create": map[string]any{
		"_id": datasetDocPrefix + name, "_type": datasetDocType, "name": name, "aclMode": acl, "number": num,
	}}}})
	res, err := e.system.transact(ctx, p, body)
	if err != nil {
		if AsError(err).Code == "documentAlreadyExists" {
			return DatasetInfo{}, errorf(CodeDatasetExists, "dataset %q already exists", name)
		}
		return DatasetInfo{}, err
	}
	doc, ok, err := e.system.store.Get(datasetDocPrefix+name, projection.Raw)
	if err != nil || !ok {
		return DatasetInfo{}, fmt.Errorf("dataset %q: record of transaction %s not found: %v", name, res.TransactionID, err)
	}
	var r datasetRecord
	if err := json.Unmarshal(doc, &r); err != nil {
		return DatasetInfo{}, err
	}
	d, err := e.openRecord(r)
	if err != nil {
		return DatasetInfo{}, err
	}
	e.byName[name] = d
	e.logger.Info("dataset created", "dataset", name, "acl", acl, "number", num)
	return d.info, nil
}

// Datasets lists the datasets by name. Any authenticated principal may
// list them; everyone (no credential) may not.
func (e *Engine) Datasets(ctx context.Context, p *authz.Principal) ([]DatasetInfo, error) {
	if p == nil || !p.Authenticated {
		return nil, errorf(CodePermissionDenied, "listing datasets needs a credential")
	}
	e.mu.RLock()
	out := make([]DatasetInfo, 0, len(e.byName))
	for _, d := range e.byName {
		out = append(out, d.info)
	}
	e.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get returns the documents with the given ids that p may read, as seen
// through perspective ("raw" when empty, "published" or "drafts"), in the
// order of ids. Ids that are not found, or that p may not read, are omitted
// alike: a document the caller may not read is indistinguishable from a
// missing one. Get sees every transaction acknowledged before it was
// called, and nothing that is not yet durable.
func (e *Engine) Get(ctx context.Context, name string, p *authz.Principal, ids []string, perspective string) ([]json.RawMessage, error) {
	d, err := e.dataset(name)
	if err != nil {
		return nil, err
	}
	pv, err := projection.ParsePerspective(perspective)
	if err != nil {
		return nil, AsError(err)
	}
	for _, id := range ids {
		if err := validateID(id); err != nil {
			return nil, err
		}
	}
	if err := d.w.readBarrier(ctx); err != nil {
		return nil, err
	}
	d.rebuild.RLock()
	defer d.rebuild.RUnlock()
	c := d.checker(p, time.Now())
	out := make([]json.RawMessage, 0, len(ids))
	for _, id := range ids {
		doc, ok, err := d.read(c, id, pv)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, doc)
		}
	}
	return out, nil
}

// read returns document id in perspective pv if c may read it. In the
// drafts perspective the draft wins when c may read it, and the published
// document is shown otherwise (if c may read that).
func (d *dataset) read(c *authz.Checker, id string, pv projection.Perspective) ([]byte, bool, error) {
	candidates := []string{id}
	if pv == projection.Drafts {
		if docid.IsDraft(id) {
			return nil, false, nil
		}
		if _, _, ok := docid.Version(id); ok {
			return nil, false, nil
		}
		candidates = []string{docid.DraftID(id), id}
	}
	for _, cand := range candidates {
		p := pv
		if pv == projection.Drafts {
			p = projection.Raw
		}
		raw, ok, err := d.store.Get(cand, p)
		if err != nil || !ok {
			if err != nil {
				return nil, false, err
			}
			continue
		}
		can, err := canRead(c, raw)
		if err != nil {
			return nil, false, err
		}
		if !can {
			continue
		}
		if pv == projection.Drafts {
			raw, err = projection.Overlay(raw, id, cand)
		}
		return raw, err == nil, err
	}
	return nil, false, nil
}

// Rebuild drops the dataset's projections and rebuilds them from its log.
// Writes to the dataset wait while it runs.
func (e *Engine) Rebuild(ctx context.Context, name string) error {
	d, err := e.dataset(name)
	if err != nil {
		return err
	}
	_, err = d.w.submit(ctx, job{fn: func() error {
		d.rebuild.Lock()
		defer d.rebuild.Unlock()
		// A rebuild may bring back documents that the filter of stored
		// ids never saw (a projection that had lost them): it starts over.
		defer d.w.scanIDs()
		return d.store.Rebuild(ctx)
	}})
	return err
}

// Verify walks the dataset's hash chain and returns the number of events
// checked, or the first inconsistency.
func (e *Engine) Verify(ctx context.Context, name string, progress func(n uint64)) (uint64, error) {
	d, err := e.dataset(name)
	if err != nil {
		return 0, err
	}
	if err := d.w.readBarrier(ctx); err != nil {
		return 0, err
	}
	return d.log.Verify(ctx, progress)
}

// pebbleDB exposes the underlying store to the package's tests.
func (e *Engine) pebbleDB() *pebble.DB { return e.db.Pebble() }
