package vellum

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"iter"
	"time"

	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/authz/groq"
	"github.com/vellum-db/vellum/eventlog"
	"github.com/vellum-db/vellum/projection"
	"github.com/vellum-db/vellum/projection/docid"
	"github.com/vellum-db/vellum/projection/jsondiff"
	"github.com/vellum-db/vellum/projection/mutation"
)

// TxResult is the answer to a transaction, in the shape of Sanity's
// mutation API.
type TxResult struct {
	TransactionID string       `json:"transactionId"`
	Results       []ResultItem `json:"results"`
	// DocumentIDs lists the ids of the documents the transaction touched,
	// when the request asked for returnIds.
	DocumentIDs []string `json:"documentIds,omitempty"`
}

// ResultItem is the outcome of one mutation.
type ResultItem struct {
	ID        string          `json:"id"`
	Operation string          `json:"operation"` // create, update, delete or none
	Document  json.RawMessage `json:"document,omitempty"`
}

// txRequest is a decoded transaction waiting for the writer.
type txRequest struct {
	principal *authz.Principal
	tx        *mutation.Transaction
	mutations json.RawMessage // as submitted, compacted: recorded in the event
}

// Transact applies a transaction to a dataset atomically and returns once its
// event and projection updates are synced. body is
// {"mutations":[...],"transactionId"?,"dryRun"?,"returnIds"?,"returnDocuments"?}.
// A transaction that fails is rejected as a whole and writes nothing.
//
// p must be allowed every effect of the transaction (see
// docs/access-control.md); the event records p and, for each effect, the
// grant that allowed it.
func (e *Engine) Transact(ctx context.Context, name string, p *authz.Principal, body []byte) (*TxResult, error) {
	d, err := e.dataset(name)
	if err != nil {
		return nil, err
	}
	return d.transact(ctx, p, body)
}

// TransactAsync is Transact without the wait, for servers that answer many
// callers at once: it queues the transaction and returns. done is then
// called exactly once with what Transact would have returned, once the
// transaction is durable or rejected. It is called from the engine's own
// goroutine that answers a whole group of transactions, in commit order, so
// it must return quickly and must neither block nor call back into the
// engine (answering is all it should do). When TransactAsync returns an
// error (an unknown dataset, a malformed body, a read-only store, ctx done or
// the engine closing before the transaction was queued), nothing was queued
// and done is never called.
func (e *Engine) TransactAsync(ctx context.Context, name string, p *authz.Principal, body []byte, done func(*TxResult, error)) error {
	d, err := e.dataset(name)
	if err != nil {
		return err
	}
	j, err := d.newTxJob(p, body)
	if err != nil {
		return err
	}
	j.done = func(r jobResult) { done(r.res, r.err) }
	return d.w.enqueue(ctx, j)
}

func (d *dataset) transact(ctx context.Context, p *authz.Principal, body []byte) (*TxResult, error) {
	j, err := d.newTxJob(p, body)
	if err != nil {
		return nil, err
	}
	res, err := d.w.submit(ctx, j)
	if err != nil {
		return nil, AsError(err)
	}
	return res, nil
}

// newTxJob decodes a transaction's body into a job for the writer.
func (d *dataset) newTxJob(p *authz.Principal, body []byte) (job, error) {
	if p == nil {
		p = authz.Anonymous()
	}
	tx, err := mutation.DecodeTransaction(body)
	if err != nil {
		return job{}, AsError(err)
	}
	if !tx.DryRun {
		if err := d.e.writable("write to dataset " + d.name); err != nil {
			return job{}, err
		}
	}
	mutations, err := submittedMutations(tx)
	if err != nil {
		return job{}, AsError(err)
	}
	return job{tx: &txRequest{principal: p, tx: tx, mutations: mutations}}, nil
}

// submittedMutations is the JSON array of the transaction's mutations as
// submitted, compacted, as the event records them.
func submittedMutations(tx *mutation.Transaction) (json.RawMessage, error) {
	n := 2
	for _, m := range tx.Mutations {
		n += len(m.Raw) + 1
	}
	buf := bytes.NewBuffer(make([]byte, 0, n))
	buf.WriteByte('[')
	for i, m := range tx.Mutations {
		if i > 0 {
			buf.WriteByte(',')
		}
		if isCompact(m.Raw) {
			// Already what Compact would write (the decoder checked it is
			// JSON): skip its second pass.
			buf.Write(m.Raw)
			continue
		}
		if err := json.Compact(buf, m.Raw); err != nil {
			return nil, err
		}
	}
	buf.WriteByte(']')
	return buf.Bytes(), nil
}

// isCompact reports whether the JSON text raw holds none of the
// insignificant whitespace (outside strings) that json.Compact removes.
func isCompact(raw []byte) bool {
	inString, escaped := false, false
	for _, c := range raw {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return false
		}
	}
	return len(raw) > 0 && !inString
}

// applied is what the writer keeps of a transaction that wrote its event,
// for the syncer.
type applied struct {
	commit        *Commit // for the watchers
	policyChanged bool
}

// apply runs in the writer goroutine. It adds the transaction's writes to
// the group being built (nothing when it is rejected, a dry run or a retry
// answered from the log) and returns the answer.
func (d *dataset) apply(w *writer, r *txRequest) (applied, *TxResult, error) {
	tx := r.tx
	now := w.nextTime()
	checker := d.checker(r.principal, now)
	if tx.TransactionID != "" {
		if g, ok := w.txids[tx.TransactionID]; ok && g > w.visible.Load() {
			// A transaction with this id is on its way to Pebble (maybe in
			// this very group): the log must show it before the lookup.
			w.waitVisible(true)
		}
		res, found, err := d.replay(r, checker)
		if found || err != nil {
			return applied{}, res, err
		}
	}
	txid := tx.TransactionID
	if txid == "" {
		txid = w.nextTxID(now)
	}
	view := &txView{d: d, w: w, now: now, checker: checker}
	out, err := mutation.Apply(mutation.Context{TxID: txid, Now: now, MaxDocumentSize: d.e.maxDoc}, view, tx)
	if err != nil {
		return applied{}, nil, AsError(err)
	}
	grants, policy, err := d.authorize(checker, out.Effects)
	if err != nil {
		return applied{}, nil, err
	}
	res := buildResult(txid, tx, out, checker)
	if tx.DryRun {
		return applied{}, res, nil
	}
	ev := &eventlog.Event{
		Seq:       w.seq + 1,
		TxID:      txid,
		Time:      now,
		Identity:  r.principal.ID,
		Mutations: r.mutations,
		PrevHash:  w.hash,
		Effects:   make([]eventlog.Effect, 0, len(out.Effects)),
	}
	docs := make([][]byte, len(out.Effects)) // the resulting documents, for the projection
	for i, eff := range out.Effects {
		ee, doc, err := encodeEffect(w, txid, eff, grants[i])
		if err != nil {
			return applied{}, nil, AsError(err)
		}
		ev.Effects = append(ev.Effects, ee)
		docs[i] = doc
	}
	// The transaction's writes go into a batch of their own first, so that
	// a failure leaves the group's batch untouched.
	b := w.txb
	b.Reset()
	if err := d.log.Append(b, ev); err != nil {
		return applied{}, nil, AsError(err)
	}
	values, err := d.store.ApplyResults(b, ev, docs, w.storedValue)
	if err != nil {
		return applied{}, nil, AsError(err)
	}
	if err := w.addTx(ev.Seq); err != nil {
		return applied{}, nil, AsError(err)
	}
	w.seq, w.hash = ev.Seq, ev.Hash
	w.txids[txid] = w.cur.num
	w.cur.txids = append(w.cur.txids, txid)
	for i, eff := range out.Effects {
		w.remember(eff.ID, eff.After, bytes.Clone(values[i]), 2*len(values[i])+len(eff.ID)+64)
	}
	if policy != nil {
		// The next transaction is decided under the changed groups.
		d.setPolicy(policy)
	}
	// The commit is made even when nobody watches yet: a watcher that
	// starts before the group is synced waits for it live.
	a := applied{policyChanged: policy != nil}
	a.commit = &Commit{Dataset: d.name, Event: ev, Docs: make([]CommitDoc, len(out.Effects)), Live: true}
	a.commit.Policy, a.commit.policyGen = d.policyNow()
	for i, eff := range out.Effects {
		a.commit.Docs[i] = CommitDoc{ID: eff.ID, Before: eff.Before, After: eff.After, AfterJSON: docs[i]}
	}
	return a, res, nil
}

// authorize decides every effect of a transaction under checker: all must be
// allowed, or the transaction is rejected. It returns the grant that allowed
// each effect and, when the transaction changes group documents, the policy
// that follows (nil when it changes none).
func (d *dataset) authorize(checker *authz.Checker, effects []mutation.Effect) ([]eventlog.GrantRef, *authz.Policy, error) {
	grants := make([]eventlog.GrantRef, len(effects))
	if d.e.authzOff {
		return grants, nil, nil
	}
	var policy *authz.Policy
	for i, eff := range effects {
		ref, err := checker.Write(eff.ID, eff.Before, eff.After)
		if err != nil {
			return nil, nil, AsError(err)
		}
		grants[i] = eventlog.GrantRef{Group: ref.Group, Index: ref.Index}
		if authz.IsGroupID(eff.ID) {
			if policy == nil {
				policy = d.policy.Load()
			}
			if policy, err = policy.Apply(eff.ID, eff.After); err != nil {
				return nil, nil, AsError(err)
			}
		}
	}
	return grants, policy, nil
}

// replay answers a retried transaction from the log: a transactionId that
// already committed returns its first result and applies nothing, forever.
func (d *dataset) replay(r *txRequest, checker *authz.Checker) (*TxResult, bool, error) {
	tx := r.tx
	seq, ok, err := d.log.LookupTx(tx.TransactionID)
	if err != nil || !ok {
		return nil, false, err
	}
	ev, err := d.log.Get(seq)
	if err != nil {
		return nil, true, err
	}
	if !bytes.Equal(ev.Mutations, r.mutations) || ev.Identity != r.principal.ID {
		return nil, true, errorf(CodeTransactionIDReused,
			"transaction %q already committed (event %d) with other mutations or by another identity; use a new transactionId", tx.TransactionID, seq)
	}
	res := &TxResult{TransactionID: ev.TxID, Results: make([]ResultItem, 0, len(ev.Effects))}
	for _, eff := range ev.Effects {
		res.Results = append(res.Results, ResultItem{ID: eff.DocID, Operation: eff.Operation})
		if tx.ReturnIDs {
			res.DocumentIDs = append(res.DocumentIDs, eff.DocID)
		}
	}
	if tx.ReturnDocuments {
		for i := range res.Results {
			if doc, ok, err := d.store.AtSeq(res.Results[i].ID, seq); err == nil && ok {
				if can, _ := canRead(checker, doc); can {
					res.Results[i].Document = doc
				}
			}
		}
	}
	return res, true, nil
}

// buildResult is the answer to a transaction. Returned documents are only
// those the caller may read (a create-only grant does not let one read back).
func buildResult(txid string, tx *mutation.Transaction, out *mutation.Outcome, checker *authz.Checker) *TxResult {
	res := &TxResult{TransactionID: txid, Results: make([]ResultItem, 0, len(out.Results))}
	for _, r := range out.Results {
		item := ResultItem{ID: r.ID, Operation: r.Operation}
		if tx.ReturnDocuments && r.Document != nil {
			if _, can := checker.Read(r.Document); can {
				item.Document, _ = json.Marshal(r.Document)
			}
		}
		res.Results = append(res.Results, item)
	}
	if tx.ReturnIDs {
		for _, eff := range out.Effects {
			res.DocumentIDs = append(res.DocumentIDs, eff.ID)
		}
	}
	return res
}

// Effects hold the resulting document when it is small or the change is
// large, and a jsondiff patch otherwise, so that a small edit to a large
// document costs about its own size in the log. Replay never re-runs patch
// logic: it copies the document or applies the structural diff.
const fullDocBelow = 1024

// encodeEffect also returns the resulting document's JSON (nil for a
// delete), which the projection stores without deriving it again. Documents
// are encoded as encoding/json encodes them (projection.AppendJSON).
func encodeEffect(w *writer, txid string, eff mutation.Effect, grant eventlog.GrantRef) (eventlog.Effect, []byte, error) {
	out := eventlog.Effect{DocID: eff.ID, Operation: eff.Operation, Grant: grant}
	if eff.Before != nil {
		out.PrevRev, _ = eff.Before["_rev"].(string)
	}
	if eff.After == nil {
		return out, nil, nil
	}
	out.NewRev = txid
	var err error
	if w.enc, err = projection.AppendJSON(w.enc[:0], eff.After); err != nil {
		return out, nil, err
	}
	doc := bytes.Clone(w.enc)
	if cap(w.enc) > 1<<20 {
		w.enc = nil // do not hold on to a large document's buffer
	}
	if eff.Before != nil && len(doc) >= fullDocBelow {
		patch, err := json.Marshal(jsondiff.Diff(eff.Before, eff.After))
		if err != nil {
			return out, nil, err
		}
		if len(patch) < len(doc)/2 {
			out.Diff = patch
			return out, doc, nil
		}
	}
	out.Doc = doc
	return out, doc, nil
}

// txView is what a transaction sees of the current documents: every
// earlier transaction (the writer applies transactions one at a time, in
// order), through the writer's cache of recent documents and Pebble.
type txView struct {
	d       *dataset
	w       *writer
	now     time.Time
	checker *authz.Checker // selections see only what the caller may read
}

func (v *txView) Get(id string) (map[string]any, bool, error) {
	if r, ok := v.w.recent[id]; ok {
		return r.doc, r.doc != nil, nil
	}
	// Not written by a group Pebble may not show yet: Pebble has it, if
	// anything does.
	if v.w.ids.absent(id) {
		return nil, false, nil
	}
	raw, ok, err := v.d.store.Get(id, projection.Raw)
	if err != nil || !ok {
		return nil, false, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, false, err
	}
	size := 2*len(raw) + len(id) + 64
	v.w.recent[id] = &recentDoc{doc: doc, size: size}
	v.w.recentN += size
	return doc, true, nil
}

// Select runs a delete or patch query (a `*[filter]` selection, optionally
// ordered and sliced) over the dataset's current documents.
func (v *txView) Select(query string, params map[string]any) ([]string, error) {
	sel, err := groq.CompileSelection(query)
	if err != nil {
		return nil, err
	}
	// The scan reads Pebble, which must show every earlier transaction.
	v.w.waitVisible(true)
	var scanErr error
	docs := iter.Seq[map[string]any](func(yield func(map[string]any) bool) {
		scanErr = v.d.store.Scan(projection.Raw, func(id string, raw []byte) error {
			doc, can, err := readable(v.checker, raw)
			if err != nil {
				return err
			}
			if !can {
				return nil
			}
			if !yield(doc) {
				return errStopScan
			}
			return nil
		})
		if scanErr == errStopScan {
			scanErr = nil
		}
	})
	selected, err := sel.Select(&groq.Env{Params: params, Now: v.now, Identity: v.checker.Principal().Identity()}, docs)
	if err != nil {
		return nil, err
	}
	if scanErr != nil {
		return nil, scanErr
	}
	ids := make([]string, 0, len(selected))
	for _, doc := range selected {
		if id, ok := doc["_id"].(string); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

var errStopScan = errors.New("scan stopped")

func validateID(id string) error {
	if err := docid.Validate(id); err != nil {
		return AsError(err)
	}
	return nil
}
