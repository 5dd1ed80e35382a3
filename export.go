package vellum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/authz/groq"
	"github.com/vellum-db/vellum/projection/docid"
)

// Error codes of export, import and replay (see docs/export-replay.md).
const (
	CodeInvalidTime        = "invalidTime"        // a time that is not RFC 3339, or in the future
	CodeUnknownTransaction = "unknownTransaction" // a transaction id the log does not hold
	CodeTimeBeforeDataset  = "timeBeforeDataset"  // a time before the dataset's first event
	CodeNoSuchEvent        = "eventNotFound"      // a sequence number beyond the log's head
)

// A Point names a moment of a dataset's history: the state just after one
// event. Exactly one of its fields is set; the zero Point is the head (the
// latest durable event).
type Point struct {
	Seq  uint64    // an event's sequence number (from 1)
	TxID string    // the id of the transaction whose event it is
	Time time.Time // the last event at or before this time
}

// IsHead reports whether p is the zero Point.
func (p Point) IsHead() bool { return p == Point{} }

func (p Point) String() string {
	switch {
	case p.Seq != 0:
		return "event " + strconv.FormatUint(p.Seq, 10)
	case p.TxID != "":
		return "transaction " + strconv.Quote(p.TxID)
	case !p.Time.IsZero():
		return "time " + p.Time.Format(time.RFC3339Nano)
	}
	return "the head"
}

var (
	digitsRE   = regexp.MustCompile(`^[0-9]+$`)
	timeLikeRE = regexp.MustCompile(`^[0-9]{4}-`) // what starts as a date must be one
)

// ParsePoint parses how a user names a point: "" (the head), a sequence
// number ("42"), an RFC 3339 time ("2026-11-23T10:00:00Z", any offset,
// fractions allowed) or a transaction id (anything else). Something that
// starts like a date but is not an RFC 3339 time is an invalidTime error,
// as is sequence number 0.
func ParsePoint(s string) (Point, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Point{}, nil
	case digitsRE.MatchString(s):
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return Point{}, errorf(CodeInvalidRequest, "%q is not an event sequence number: they run from 1 to %d", s, uint64(1<<64-1))
		}
		return Point{Seq: n}, nil
	case timeLikeRE.MatchString(s):
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return Point{}, errorf(CodeInvalidTime, "malformed time %q: use RFC 3339, such as 2026-11-23T10:00:00Z or 2026-11-23T11:00:00.5+01:00", s)
		}
		return Point{Time: t.UTC()}, nil
	}
	return Point{TxID: s}, nil
}

// resolve returns the sequence number of point p in d's log, as seen after
// every write acknowledged so far, and the head. Errors say what was not
// found: unknownTransaction, eventNotFound, timeBeforeDataset, or
// invalidTime for a time in the future.
func (d *dataset) resolve(ctx context.Context, p Point) (seq, head uint64, err error) {
	if err := d.w.readBarrier(ctx); err != nil {
		return 0, 0, err
	}
	head, _, err = d.log.Head()
	if err != nil {
		return 0, 0, err
	}
	switch {
	case p.Seq != 0:
		if p.Seq > head {
			return 0, head, errorf(CodeNoSuchEvent, "dataset %q has no event %d: its log ends at event %d", d.name, p.Seq, head)
		}
		return p.Seq, head, nil
	case p.TxID != "":
		seq, ok, err := d.log.LookupTx(p.TxID)
		if err != nil {
			return 0, head, err
		}
		if !ok || seq > head {
			return 0, head, &Error{Code: CodeUnknownTransaction, ID: p.TxID,
				Description: fmt.Sprintf("dataset %q has no transaction %q (a point is an event number, an RFC 3339 time or a transaction id; `vellum history log` lists them)", d.name, p.TxID)}
		}
		return seq, head, nil
	case !p.Time.IsZero():
		if now := time.Now(); p.Time.After(now) {
			return 0, head, errorf(CodeInvalidTime, "time %s is in the future (it is %s now): the dataset's state then is not known yet",
				p.Time.Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339))
		}
		seq, err := d.log.SeqAtTime(p.Time)
		if err != nil {
			return 0, head, err
		}
		if seq == 0 || seq > head {
			first := "it has no event yet"
			if head > 0 {
				if ev, err := d.log.Get(1); err == nil {
					first = "its first event is at " + ev.Time.Format(time.RFC3339Nano)
				}
			}
			return 0, head, errorf(CodeTimeBeforeDataset, "dataset %q did not exist yet at %s: %s", d.name, p.Time.Format(time.RFC3339Nano), first)
		}
		return seq, head, nil
	}
	return head, head, nil
}

// ResolvePoint returns the sequence number of p in dataset name and the
// log's head. It needs read access to some of the dataset (see Export).
func (e *Engine) ResolvePoint(ctx context.Context, name string, p Point) (seq, head uint64, err error) {
	d, err := e.dataset(name)
	if err != nil {
		return 0, 0, err
	}
	return d.resolve(ctx, p)
}

// ExportOptions say what Export and ExportPage write.
type ExportOptions struct {
	// At is the point exported; the zero Point is the head.
	At Point
	// Seq, when not 0, is the sequence number already resolved by an
	// earlier page of the same export; it takes precedence over At, so
	// every page shows the same state.
	Seq uint64
	// After resumes after this document id ("" from the first).
	After string
	// NoDrafts leaves out drafts (drafts.*) and versions (versions.*), as
	// Sanity's `dataset export --no-drafts`.
	NoDrafts bool
	// System includes system documents (ids starting with "_.", such as
	// group documents), which Sanity's export leaves out.
	System bool
	// MaxBytes ends a page once its documents add up to this many bytes
	// (at least one document is always included); 0 means no limit.
	MaxBytes int
	// Progress, if not nil, is called with the number of documents
	// written so far, every 16384 documents and at the end (Export only).
	Progress func(n int64)
}

// ExportPage is one page of an export.
type ExportPage struct {
	// Seq is the event the export shows the state after; pass it as
	// ExportOptions.Seq for the next page. 0 for an empty dataset.
	Seq       uint64            `json:"seq"`
	Documents []json.RawMessage `json:"documents"`
	// Next is the id to resume after, when More.
	Next string `json:"next,omitempty"`
	More bool   `json:"more"`
}

// errPageFull stops a page's scan.
var errPageFull = errors.New("page full")

// Export writes every document of dataset name as of opts.At that p may
// read, one JSON document per call of fn, in id order: Sanity's export
// format (NDJSON, one document per line, as stored, with _id, _type, _rev,
// _createdAt and _updatedAt). Drafts and versions are included unless
// opts.NoDrafts; system documents (_.*) only with opts.System.
//
// Documents p may not read are left out, as in a query: an administrator
// exports everything. The state is that of one consistent snapshot: writes
// made while the export runs are not in it. doc is only valid during fn.
func (e *Engine) Export(ctx context.Context, name string, p *authz.Principal, opts ExportOptions, fn func(doc []byte) error) (seq uint64, n int64, err error) {
	d, err := e.dataset(name)
	if err != nil {
		return 0, 0, err
	}
	seq = opts.Seq
	if seq == 0 {
		if seq, _, err = d.resolve(ctx, opts.At); err != nil {
			return 0, 0, err
		}
	}
	err = d.export(ctx, p, seq, opts, func(id string, doc []byte) error {
		n++
		if opts.Progress != nil && n%16384 == 0 {
			opts.Progress(n)
		}
		return fn(doc)
	})
	if opts.Progress != nil {
		opts.Progress(n)
	}
	return seq, n, err
}

// ExportPage returns the next page of an export (see Export and
// ExportOptions): the transport sends an export in pages that each fit a
// message.
func (e *Engine) ExportPage(ctx context.Context, name string, p *authz.Principal, opts ExportOptions) (*ExportPage, error) {
	d, err := e.dataset(name)
	if err != nil {
		return nil, err
	}
	page := &ExportPage{Seq: opts.Seq, Documents: []json.RawMessage{}}
	if page.Seq == 0 {
		if page.Seq, _, err = d.resolve(ctx, opts.At); err != nil {
			return nil, err
		}
	}
	size := 0
	// The documents are copied into one buffer, not one allocation each.
	var buf []byte
	if opts.MaxBytes > 0 {
		buf = make([]byte, 0, min(opts.MaxBytes, 64<<20))
	}
	err = d.export(ctx, p, page.Seq, opts, func(id string, doc []byte) error {
		if opts.MaxBytes > 0 && len(page.Documents) > 0 && size+len(doc) > opts.MaxBytes {
			page.More = true
			return errPageFull
		}
		start := len(buf)
		buf = append(buf, doc...)
		page.Documents = append(page.Documents, json.RawMessage(buf[start:len(buf):len(buf)]))
		page.Next = id
		size += len(doc) + 1
		return nil
	})
	if err != nil && err != errPageFull {
		return nil, err
	}
	if !page.More {
		page.Next = ""
	}
	return page, nil
}

// export calls fn with every document as of seq, after opts.After, that
// passes opts' filters and that p may read.
func (d *dataset) export(ctx context.Context, p *authz.Principal, seq uint64, opts ExportOptions, fn func(id string, doc []byte) error) error {
	if seq == 0 {
		return nil // nothing happened yet
	}
	if opts.After != "" {
		if err := docid.Validate(opts.After); err != nil {
			return AsError(err)
		}
	}
	if err := d.w.readBarrier(ctx); err != nil {
		return err
	}
	d.rebuild.RLock()
	defer d.rebuild.RUnlock()
	// An administrator reads everything (the built-in administrator group
	// grants read on **): no document needs decoding for a decision.
	var (
		checker  *authz.Checker
		byID     *authz.GrantSet // set when every read grant is a path: decided by id alone
		noFilter groq.Env
	)
	if !p.HasRole(authz.RoleAdministrator, d.name) {
		checker = d.checker(p, time.Now())
		if readsByPathOnly(d.policy.Load(), checker.GrantSet()) {
			byID = checker.GrantSet()
		}
	}
	n := 0
	return d.store.ScanAt(seq, opts.After, func(id string, doc []byte) error {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return AsError(err)
			}
		}
		if !opts.System && strings.HasPrefix(id, "_.") {
			return nil
		}
		if opts.NoDrafts && (docid.IsDraft(id) || strings.HasPrefix(id, "versions.")) {
			return nil
		}
		if byID != nil {
			// No filter to evaluate: no document to decode.
			if _, can := byID.Allows(&noFilter, authz.PermRead, id, nil); !can {
				return nil
			}
		} else if checker != nil {
			can, err := canRead(checker, doc)
			if err != nil {
				return err
			}
			if !can {
				return nil
			}
		}
		return fn(id, doc)
	})
}

// readsByPathOnly reports whether every grant of gs that gives read is a
// path grant (no GROQ filter): then whether a document may be read depends
// on its id alone.
func readsByPathOnly(pol *authz.Policy, gs *authz.GrantSet) bool {
	for _, id := range gs.Groups() {
		g, ok := pol.Group(id)
		if !ok {
			return false
		}
		for _, gr := range g.Grants {
			if gr.Has(authz.PermRead) && gr.Filter != "" {
				return false
			}
		}
	}
	return true
}
