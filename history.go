package vellum

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/eventlog"
	"github.com/vellum-db/vellum/projection/mutation"
)

// The auditor's reads of the past (docs/audit.md): documents at a revision
// or a time, and the transaction log.
//
// Access: history is read under the caller's grants as they are now (not as
// they were then), applied to the historical version of each document. An
// administrator, or any role or group that reads a document today, reads
// its past versions and the transactions that changed it; nobody reads
// through history what the current grants hide. Sanity's history API
// applies current access control in the same way.

// HistoryOptions choose the version HistoryDocuments returns: exactly one
// of Revision and Time.
type HistoryOptions struct {
	Revision string    // a transaction id: the version that transaction wrote
	Time     time.Time // the version current at that time
}

// HistoryDocuments returns documents ids of dataset name as they were at a
// revision or a time, in the order of ids, as Sanity's history API
// (GET /data/history/:dataset/documents/:ids?revision=|time=) does. A
// document that did not exist then, that the revision did not write, or
// that p may not read, is a documentNotFound error (the three are not told
// apart, so history does not reveal what p may not read). Other errors:
// invalidRequest (no id, both or neither of revision and time),
// unknownTransaction, invalidTime (a time in the future),
// timeBeforeDataset.
func (e *Engine) HistoryDocuments(ctx context.Context, name string, p *authz.Principal, ids []string, opts HistoryOptions) ([]json.RawMessage, error) {
	d, err := e.dataset(name)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errorf(CodeInvalidRequest, "history needs at least one document id")
	}
	for _, id := range ids {
		if err := validateID(id); err != nil {
			return nil, err
		}
	}
	var (
		seq   uint64
		where string
	)
	switch {
	case opts.Revision != "" && !opts.Time.IsZero():
		return nil, errorf(CodeInvalidRequest, "give a revision or a time, not both: they name different points of history")
	case opts.Revision != "":
		if seq, _, err = d.resolve(ctx, Point{TxID: opts.Revision}); err != nil {
			return nil, err
		}
		where = "at revision " + opts.Revision
	case !opts.Time.IsZero():
		if seq, _, err = d.resolve(ctx, Point{Time: opts.Time}); err != nil {
			return nil, err
		}
		where = "at " + opts.Time.UTC().Format(time.RFC3339Nano)
	default:
		return nil, errorf(CodeInvalidRequest, "history needs a revision (a transaction id) or a time")
	}
	d.rebuild.RLock()
	defer d.rebuild.RUnlock()
	c := d.checker(p, time.Now())
	all := readsEverything(p, name) // no need to decode the versions to decide
	out := make([]json.RawMessage, 0, len(ids))
	for _, id := range ids {
		var (
			raw []byte
			ok  bool
		)
		if opts.Revision != "" {
			raw, ok, err = d.store.AtRev(id, opts.Revision)
		} else {
			raw, ok, err = d.store.AtSeq(id, seq)
		}
		if err != nil {
			return nil, AsError(err)
		}
		if ok && !all {
			if ok, err = canRead(c, raw); err != nil {
				return nil, AsError(err)
			}
		}
		if !ok {
			return nil, &Error{Code: mutation.CodeDocumentNotFound, ID: id,
				Description: fmt.Sprintf("document %q of dataset %q not found %s: it did not exist then, that transaction did not write it, or %s may not read it", id, name, where, describe(p))}
		}
		out = append(out, raw)
	}
	return out, nil
}

// LogFilter selects the transactions TransactionLog returns.
type LogFilter struct {
	// IDs, if not empty, keeps the transactions that changed one of these
	// documents.
	IDs []string
	// From and To bound the log (inclusive): an event number, a
	// transaction id, or a time (From: the first event at or after it;
	// To: the last event at or before it). The zero Point is the start
	// (From) or the head (To).
	From, To Point
	// Author, if not "", keeps the transactions of that identity.
	Author string
	// Limit, if positive, stops after that many transactions.
	Limit int
	// Reverse lists the newest first.
	Reverse bool
	// After, if not 0, resumes a listing after (Reverse: before) this
	// event: the Seq of the last entry of the previous page.
	After uint64
}

// LogEntry is one transaction in the shape of Sanity's transaction log
// (id, timestamp, author, documentIDs, mutations, effects), with Vellum's
// effects: per document, what the event records (the whole resulting
// document, or a jsondiff patch against the previous version, or a
// deletion) and the grant that allowed it. Seq and the hashes place the
// transaction in the dataset's hash chain.
type LogEntry struct {
	ID          string               `json:"id"`
	Seq         uint64               `json:"seq"`
	Timestamp   string               `json:"timestamp"` // RFC 3339, UTC, nanoseconds
	Author      string               `json:"author"`
	DocumentIDs []string             `json:"documentIDs"`
	Mutations   json.RawMessage      `json:"mutations"`          // as submitted; null when Redacted
	Redacted    bool                 `json:"redacted,omitempty"` // the transaction changed documents the caller may not read
	Effects     map[string]LogEffect `json:"effects"`            // by document id
	PrevHash    string               `json:"previousHash"`       // hex
	Hash        string               `json:"hash"`               // hex
}

// LogEffect is what a transaction did to one document. Exactly one of
// Document (the whole resulting document) and Diff (a jsondiff patch that
// turns the previous version into the new one, see projection/jsondiff) is
// set, unless Operation is delete.
type LogEffect struct {
	Operation   string          `json:"operation"` // create, update or delete
	PreviousRev string          `json:"previousRev,omitempty"`
	ResultRev   string          `json:"resultRev,omitempty"`
	Document    json.RawMessage `json:"document,omitempty"`
	Diff        json.RawMessage `json:"diff,omitempty"`
	Grant       LogGrant        `json:"grant"`
}

// LogGrant names the grant that allowed an effect: the group document and
// the index of the grant in it.
type LogGrant struct {
	Group string `json:"group"`
	Index int    `json:"index"`
}

// errStop ends a log scan early.
var errStop = errors.New("stop")

// TransactionLog returns the transactions of dataset name that f selects,
// oldest first (or newest first with f.Reverse), under p's current read
// grants: a transaction shows only the effects on documents p may read
// (judged on the version the effect wrote, or, for a deletion, the version
// it deleted), with its mutations replaced by null (Redacted) when it
// changed others too, and is left out when p may read none of them. With
// f.IDs, the events are found through the documents' history index, not by
// scanning the log. Bad bounds are errors before the first entry:
// unknownTransaction, eventNotFound, invalidTime (a future time),
// timeBeforeDataset (To before the first event), invalidRequest.
func (e *Engine) TransactionLog(ctx context.Context, name string, p *authz.Principal, f LogFilter) iter.Seq2[*LogEntry, error] {
	return func(yield func(*LogEntry, error) bool) {
		d, err := e.dataset(name)
		if err != nil {
			yield(nil, err)
			return
		}
		from, to, err := d.logBounds(ctx, f)
		if err != nil {
			yield(nil, err)
			return
		}
		if f.After != 0 {
			if f.Reverse {
				to = min(to, f.After-1)
			} else {
				from = max(from, f.After+1)
			}
		}
		if from == 0 || from > to {
			return
		}
		d.rebuild.RLock()
		defer d.rebuild.RUnlock()
		lr := &logReader{d: d, c: d.checker(p, time.Now()), all: readsEverything(p, d.name), author: f.Author}
		n := 0
		emit := func(ev *eventlog.Event) (bool, error) {
			entry, err := lr.entry(ev)
			if err != nil || entry == nil {
				return err == nil, err
			}
			n++
			if !yield(entry, nil) {
				return false, nil
			}
			return f.Limit <= 0 || n < f.Limit, nil
		}
		if len(f.IDs) > 0 || f.Reverse {
			var seqs []uint64
			if len(f.IDs) > 0 {
				for _, id := range f.IDs {
					s, err := d.store.HistorySeqs(id, from, to)
					if err != nil {
						yield(nil, AsError(err))
						return
					}
					seqs = append(seqs, s...)
				}
				slices.Sort(seqs)
				seqs = slices.Compact(seqs)
			}
			next := func(i int) uint64 { return seqs[i] }
			count := len(seqs)
			if len(f.IDs) == 0 {
				next = func(i int) uint64 { return from + uint64(i) }
				count = int(to - from + 1)
			}
			for i := range count {
				if f.Reverse {
					i = count - 1 - i
				}
				if i%1024 == 0 && ctx.Err() != nil {
					yield(nil, AsError(ctx.Err()))
					return
				}
				ev, err := d.log.Get(next(i))
				if err != nil {
					yield(nil, AsError(err))
					return
				}
				more, err := emit(ev)
				if err != nil {
					yield(nil, AsError(err))
					return
				}
				if !more {
					return
				}
			}
			return
		}
		err = d.log.Scan(ctx, from, func(ev *eventlog.Event) error {
			if ev.Seq > to {
				return errStop
			}
			more, err := emit(ev)
			if err != nil {
				return err
			}
			if !more {
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			yield(nil, AsError(err))
		}
	}
}

// logBounds resolves f's bounds and checks its other fields.
func (d *dataset) logBounds(ctx context.Context, f LogFilter) (from, to uint64, err error) {
	for _, id := range f.IDs {
		if err := validateID(id); err != nil {
			return 0, 0, err
		}
	}
	if f.Limit < 0 {
		return 0, 0, errorf(CodeInvalidRequest, "limit %d: give a positive number of transactions, or 0 for all", f.Limit)
	}
	to, head, err := d.resolve(ctx, f.To)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case f.From.IsHead():
		from = 1
	case !f.From.Time.IsZero():
		if now := time.Now(); f.From.Time.After(now) {
			return 0, 0, errorf(CodeInvalidTime, "time %s is in the future (it is %s now)", f.From.Time.Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339))
		}
		// The first event at or after the time: one past the last before it.
		before, err := d.log.SeqAtTime(f.From.Time.Add(-time.Nanosecond))
		if err != nil {
			return 0, 0, AsError(err)
		}
		from = min(before, head) + 1
	default:
		if from, _, err = d.resolve(ctx, f.From); err != nil {
			return 0, 0, err
		}
	}
	return from, to, nil
}

// readsEverything reports whether p holds a role that reads every document
// of dataset (all the built-in roles do: their read grant is the path
// "**"), so that no document needs to be decoded to decide.
func readsEverything(p *authz.Principal, dataset string) bool {
	for _, r := range authz.Roles {
		if p.HasRole(r, dataset) {
			return true
		}
	}
	return false
}

// logReader turns events into log entries for one caller.
type logReader struct {
	d      *dataset
	c      *authz.Checker
	all    bool // the caller reads every document
	author string
}

// entry returns the log entry of ev as the caller may see it, or nil if
// the caller may see none of it or the author filter leaves it out.
func (r *logReader) entry(ev *eventlog.Event) (*LogEntry, error) {
	if r.author != "" && ev.Identity != r.author {
		return nil, nil
	}
	le := &LogEntry{
		ID:        ev.TxID,
		Seq:       ev.Seq,
		Timestamp: ev.Time.UTC().Format(time.RFC3339Nano),
		Author:    ev.Identity,
		Mutations: json.RawMessage(slices.Clone(ev.Mutations)),
		Effects:   make(map[string]LogEffect, len(ev.Effects)),
		PrevHash:  hex.EncodeToString(ev.PrevHash[:]),
		Hash:      hex.EncodeToString(ev.Hash[:]),
	}
	if len(le.Mutations) == 0 {
		le.Mutations = json.RawMessage("[]")
	}
	for i := range ev.Effects {
		ef := &ev.Effects[i]
		if !r.all {
			ok, err := r.mayRead(ev.Seq, ef)
			if err != nil {
				return nil, err
			}
			if !ok {
				le.Redacted = true
				continue
			}
		}
		le.DocumentIDs = append(le.DocumentIDs, ef.DocID)
		le.Effects[ef.DocID] = LogEffect{
			Operation:   ef.Operation,
			PreviousRev: ef.PrevRev,
			ResultRev:   ef.NewRev,
			Document:    json.RawMessage(slices.Clone(ef.Doc)),
			Diff:        json.RawMessage(slices.Clone(ef.Diff)),
			Grant:       LogGrant{Group: ef.Grant.Group, Index: ef.Grant.Index},
		}
	}
	if len(le.DocumentIDs) == 0 && (len(ev.Effects) > 0 || !r.all) {
		return nil, nil
	}
	if le.DocumentIDs == nil {
		le.DocumentIDs = []string{}
	}
	if le.Redacted {
		le.Mutations = json.RawMessage("null")
	}
	return le, nil
}

// mayRead reports whether the caller may read the document of effect ef of
// event seq: the version it wrote, or the version it deleted.
func (r *logReader) mayRead(seq uint64, ef *eventlog.Effect) (bool, error) {
	raw := ef.Doc
	if raw == nil {
		at := seq
		if ef.Operation == eventlog.OpDelete {
			at = seq - 1
		}
		var ok bool
		var err error
		if raw, ok, err = r.d.store.AtSeq(ef.DocID, at); err != nil || !ok {
			return false, err
		}
	}
	return canRead(r.c, raw)
}
