package mutation

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/vellum-db/vellum/projection/docid"
)

// A View gives read access to the documents a transaction applies to.
type View interface {
	// Get returns the current document with the id, which Apply does not
	// modify.
	Get(id string) (map[string]any, bool, error)
	// Select returns the ids of the documents a GROQ query selects.
	Select(query string, params map[string]any) ([]string, error)
}

// Context carries what Apply needs besides the documents.
type Context struct {
	TxID            string    // becomes the _rev of every written document
	Now             time.Time // becomes _updatedAt (and _createdAt of new documents)
	MaxDocumentSize int       // bytes of a document's JSON; 0 means no limit
}

// Operations of results and effects.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
	OpNone   = "none"
)

// Outcome is what a transaction does: one Result per document each
// mutation concerns, in mutation order, and one Effect per document whose
// content the transaction changes. Its documents may be shared with the
// View and with each other: treat them as read-only.
type Outcome struct {
	Results []Result
	Effects []Effect
}

// A Result reports what one mutation did to one document. Document is the
// document after the mutation (for a delete, the deleted document; for
// none, the existing document, or nil).
type Result struct {
	ID        string
	Operation string
	Document  map[string]any
}

// An Effect is the net change of one document over the whole transaction,
// in the order the transaction first wrote the documents. Before is the
// document as the View gave it (nil: absent; shared with the View, do not
// modify), After its final state (nil: deleted). Operation is create,
// update or delete.
type Effect struct {
	ID            string
	Before, After map[string]any
	Operation     string
}

// TimeFormat is how _createdAt and _updatedAt are written: RFC 3339 in UTC
// with second precision, as Sanity writes them (2025-01-02T03:04:05Z).
const TimeFormat = "2006-01-02T15:04:05Z"

// Apply applies the mutations of tx in order, each seeing the effects of
// the ones before, and returns the outcome. It changes nothing: documents
// from the View and from tx are copied before they are modified, although
// the outcome's documents may share nested values with tx's (treat both as
// read-only once applied). If a mutation fails,
// Apply returns an *Error whose Index is that mutation's, and no outcome.
// Errors of the View are returned as they are.
//
// Selection by query (Mutation.Query) asks View.Select, which sees the
// documents as they were before the transaction; the ids it returns are
// then read through the transaction, so documents deleted by an earlier
// mutation are skipped.
//
// Semantics, following Sanity's Mutation API and patch reference:
//   - create fails with documentAlreadyExists on an existing id; without
//     _id it generates one, and an _id ending in "." gets a generated
//     suffix. A valid RFC 3339 _createdAt in the document is kept.
//   - createOrReplace keeps _createdAt, unless the _type changes (Sanity:
//     "it will act as a delete then create").
//   - createIfNotExists and delete of a missing id do nothing (operation
//     none, no effect).
//   - patch of a missing id is documentNotFound; ifRevisionID must equal
//     the current _rev (documentRevisionIDDoesNotMatch, with both in
//     Details). Operations run in the order set, setIfMissing, unset, inc,
//     dec, insert, diffMatchPatch; the entries of one in JSON order.
//   - set and setIfMissing create missing objects on the way; paths through
//     a value of the wrong type are typeMismatch (unset just skips them);
//     inc, dec and diffMatchPatch need the value to be present
//     (invalidPatch) and of the right type (typeMismatch); insert needs an
//     array (missing: invalidPatch, other: typeMismatch).
//   - _id, _rev, _createdAt and _updatedAt cannot be patched (invalidPatch);
//     a patch may change _type but not remove it.
//   - Every written document gets _rev = ctx.TxID and _updatedAt = ctx.Now
//     in TimeFormat; one larger than ctx.MaxDocumentSize bytes of JSON is
//     documentTooLarge.
func Apply(ctx Context, view View, tx *Transaction) (*Outcome, error) {
	a := &applier{ctx: ctx, view: view, docs: map[string]*entry{}, now: ctx.Now.UTC().Format(TimeFormat)}
	for i := range tx.Mutations {
		if err := a.mutation(i, &tx.Mutations[i]); err != nil {
			return nil, err
		}
	}
	out := &Outcome{Results: a.results}
	for _, id := range a.order {
		e := a.docs[id]
		if e.before == nil && e.cur == nil {
			continue // created and deleted within the transaction
		}
		op := OpUpdate
		switch {
		case e.before == nil:
			op = OpCreate
		case e.cur == nil:
			op = OpDelete
		}
		out.Effects = append(out.Effects, Effect{ID: id, Before: e.before, After: e.cur, Operation: op})
	}
	return out, nil
}

type entry struct {
	before  map[string]any // as the View gave it
	cur     map[string]any // current state within the transaction
	written bool
}

type applier struct {
	ctx     Context
	view    View
	now     string
	docs    map[string]*entry
	order   []string
	results []Result
}

func (a *applier) get(id string) (*entry, error) {
	if e, ok := a.docs[id]; ok {
		return e, nil
	}
	doc, ok, err := a.view.Get(id)
	if err != nil {
		return nil, err
	}
	if !ok {
		doc = nil
	}
	e := &entry{before: doc, cur: doc}
	a.docs[id] = e
	return e, nil
}

func (a *applier) write(i int, id string, e *entry, doc map[string]any) error {
	if doc != nil {
		size, ok := jsonSize(doc)
		if !ok {
			return errorf(CodeInvalidPatch, i, id, "document %q cannot be encoded as JSON", id)
		}
		if a.ctx.MaxDocumentSize > 0 && size > a.ctx.MaxDocumentSize {
			err := errorf(CodeDocumentTooLarge, i, id, "document %q would be %d bytes, more than the limit of %d bytes", id, size, a.ctx.MaxDocumentSize)
			err.Details = map[string]any{"size": size, "limit": a.ctx.MaxDocumentSize}
			return err
		}
	}
	e.cur = doc
	if !e.written {
		e.written = true
		a.order = append(a.order, id)
	}
	return nil
}

func (a *applier) result(id, op string, doc map[string]any) {
	a.results = append(a.results, Result{ID: id, Operation: op, Document: doc})
}

func (a *applier) mutation(i int, m *Mutation) error {
	switch m.Kind {
	case KindCreate, KindCreateOrReplace, KindCreateIfNotExists:
		return a.create(i, m)
	case KindDelete:
		ids, err := a.targets(i, m)
		if err != nil {
			return err
		}
		for _, id := range ids {
			e, err := a.get(id)
			if err != nil {
				return err
			}
			if e.cur == nil {
				if m.Query == "" {
					a.result(id, OpNone, nil)
				}
				continue
			}
			old := e.cur
			if err := a.write(i, id, e, nil); err != nil {
				return err
			}
			a.result(id, OpDelete, old)
		}
		return nil
	case KindPatch:
		ids, err := a.targets(i, m)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := a.patch(i, id, m); err != nil {
				return err
			}
		}
		return nil
	}
	return errorf(CodeUnknownMutation, i, "", "unknown mutation kind %q", m.Kind)
}

// targets returns the ids a delete or patch applies to.
func (a *applier) targets(i int, m *Mutation) ([]string, error) {
	if m.Query == "" {
		if err := docid.Validate(m.ID); err != nil {
			return nil, idError(i, err)
		}
		return []string{m.ID}, nil
	}
	ids, err := a.view.Select(m.Query, m.Params)
	if err != nil {
		return nil, err
	}
	return ids, nil
}

func idError(i int, err error) *Error {
	var e *docid.Error
	if errors.As(err, &e) {
		out := errorf(CodeInvalidDocumentID, i, e.ID, "%s", e.Error())
		if e.Pos >= 0 {
			out.Details = map[string]any{"position": e.Pos}
		}
		return out
	}
	return errorf(CodeInvalidDocumentID, i, "", "%v", err)
}

func (a *applier) create(i int, m *Mutation) error {
	// Only the top level is copied: the system fields are set on the copy,
	// and nested values are shared with m.Document, which nothing modifies
	// (a later patch of the document copies it first).
	doc := make(map[string]any, len(m.Document)+4)
	for k, v := range m.Document {
		doc[k] = v
	}
	id, hasID := doc["_id"].(string)
	switch {
	case !hasID && m.Kind == KindCreate:
		id = newID()
	case strings.HasSuffix(id, ".") && m.Kind == KindCreate:
		id += newID()
	}
	if err := docid.Validate(id); err != nil {
		return idError(i, err)
	}
	e, err := a.get(id)
	if err != nil {
		return err
	}
	createdAt, given := a.now, false
	if s, ok := doc["_createdAt"]; ok {
		given = true
		str, isString := s.(string)
		if _, err := time.Parse(time.RFC3339Nano, str); !isString || err != nil {
			found := kindName(s)
			if isString {
				found = strconv.Quote(str)
			}
			return errorf(CodeMalformedTransaction, i, id, "_createdAt must be an RFC 3339 timestamp, found %s", found)
		}
		createdAt = str
	}
	op := OpCreate
	if e.cur != nil {
		switch m.Kind {
		case KindCreate:
			return errorf(CodeDocumentAlreadyExists, i, id, "document %q already exists", id)
		case KindCreateIfNotExists:
			a.result(id, OpNone, e.cur)
			return nil
		}
		op = OpUpdate
		// createOrReplace keeps the creation time of the document it
		// replaces, unless the type changes: then it acts as a delete
		// followed by a create (Sanity's Mutation API reference).
		if old, _ := e.cur["_createdAt"].(string); old != "" && !given && e.cur["_type"] == doc["_type"] {
			createdAt = old
		}
	}
	doc["_id"] = id
	doc["_rev"] = a.ctx.TxID
	doc["_createdAt"] = createdAt
	doc["_updatedAt"] = a.now
	if err := a.write(i, id, e, doc); err != nil {
		return err
	}
	a.result(id, op, doc)
	return nil
}

// systemFields cannot be patched: the store maintains them.
var systemFields = map[string]bool{"_id": true, "_rev": true, "_createdAt": true, "_updatedAt": true}

func (a *applier) patch(i int, id string, m *Mutation) error {
	p := m.Patch
	e, err := a.get(id)
	if err != nil {
		return err
	}
	if e.cur == nil {
		if m.Query != "" {
			return nil // deleted earlier in the transaction
		}
		return errorf(CodeDocumentNotFound, i, id, "document %q does not exist, so it cannot be patched", id)
	}
	if p.IfRevisionID != "" {
		rev, _ := e.cur["_rev"].(string)
		if rev != p.IfRevisionID {
			err := errorf(CodeRevisionIDDoesNotMatch, i, id, "document %q has revision %q, but the patch expects revision %q", id, rev, p.IfRevisionID)
			err.Details = map[string]any{"currentRevision": rev, "expectedRevision": p.IfRevisionID}
			return err
		}
	}
	if err := checkSystemPaths(i, id, p); err != nil {
		return err
	}
	doc := deepCopy(e.cur).(map[string]any)
	fail := func(err *opError) error { return errorf(err.code, i, id, "patch of %q %s", id, err.msg) }
	for _, op := range p.Set {
		if err := opSet(doc, op); err != nil {
			return fail(err)
		}
	}
	for _, op := range p.SetIfMissing {
		if err := opSetIfMissing(doc, op); err != nil {
			return fail(err)
		}
	}
	for _, path := range p.Unset {
		if err := opUnset(doc, path); err != nil {
			return fail(err)
		}
	}
	for _, op := range p.Inc {
		if err := opInc(doc, op, 1); err != nil {
			return fail(err)
		}
	}
	for _, op := range p.Dec {
		if err := opInc(doc, op, -1); err != nil {
			return fail(err)
		}
	}
	if p.Insert != nil {
		if err := opInsert(doc, p.Insert); err != nil {
			return fail(err)
		}
	}
	for _, op := range p.DiffMatchPatch {
		if err := opDiffMatchPatch(doc, op); err != nil {
			return fail(err)
		}
	}
	// A wildcard at the top may have reached system fields: restore them.
	for _, f := range []string{"_id", "_createdAt"} {
		if v, ok := e.cur[f]; ok {
			doc[f] = v
		} else {
			delete(doc, f)
		}
	}
	if t, ok := doc["_type"].(string); !ok || t == "" {
		return errorf(CodeInvalidPatch, i, id, "patch of %q would leave it without a _type (a non-empty string)", id)
	}
	doc["_rev"] = a.ctx.TxID
	doc["_updatedAt"] = a.now
	if err := a.write(i, id, e, doc); err != nil {
		return err
	}
	a.result(id, OpUpdate, doc)
	return nil
}

func checkSystemPaths(i int, id string, p *Patch) error {
	check := func(op string, path Path) error {
		if s := path.segs[0]; s.kind == segAttr && systemFields[s.name] {
			return errorf(CodeInvalidPatch, i, id, "%s at %q: the system field %s is maintained by the store and cannot be patched", op, path.text, s.name)
		}
		return nil
	}
	for _, group := range []struct {
		name string
		ops  []Op
	}{{"set", p.Set}, {"setIfMissing", p.SetIfMissing}, {"inc", p.Inc}, {"dec", p.Dec}, {"diffMatchPatch", p.DiffMatchPatch}} {
		for _, op := range group.ops {
			if err := check(group.name, op.Path); err != nil {
				return err
			}
		}
	}
	for _, path := range p.Unset {
		if err := check("unset", path); err != nil {
			return err
		}
	}
	if p.Insert != nil {
		return check("insert", p.Insert.Path)
	}
	return nil
}

// newID generates ids for create; tests replace it to get stable output.
var newID = docid.New
