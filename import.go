package vellum

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/projection/docid"
)

// Import: an NDJSON file of documents (Sanity's export format, as Export
// writes it) loaded as ordinary, audited transactions (docs/export-replay.md).
//
// "Nothing half-written" is achieved in two passes:
//
//  1. Every line is checked locally (JSON object, valid _id, a _type, no
//     duplicate _id, small enough for one request), then every batch is
//     sent as a dry run, which applies the mutations and decides every
//     grant without writing. Each rejected line is reported with its
//     number and reason; if any is, nothing is written.
//  2. Only then are the batches written, one transaction each
//     (createOrReplace of each document, in file order).
//
// Each batch's transaction id is derived from the file's SHA-256 and the
// batch's documents, so running the same import again is answered from the
// log, batch by batch, and applies nothing twice. Should a batch fail in
// pass 2 (the dataset or its groups changed between the passes, or the
// daemon stopped), the error says which batches were committed; running
// the import again completes it.

// Error codes of Import.
const (
	CodeImportRejected   = "importRejected"   // some lines are not acceptable; nothing was written
	CodeImportIncomplete = "importIncomplete" // a batch failed after earlier ones were committed
)

// ImportOptions configure Import.
type ImportOptions struct {
	// BatchSize is the number of documents per transaction; 0 means 256.
	BatchSize int
	// MaxBatchBytes bounds the size of one transaction body; 0 means
	// 512 KiB, which fits a NATS message of the default 1 MiB limit. A
	// document that does not fit alone is a rejected line.
	MaxBatchBytes int
	// MaxRejections stops the check after this many rejected lines; 0
	// means 1000.
	MaxRejections int
	// Progress, if not nil, is called with the pass ("check" or "write")
	// and the number of documents done in it, after each batch.
	Progress func(pass string, done, total int64)
}

// Rejection is a line of an import that is not acceptable.
type Rejection struct {
	Line   int    `json:"line"` // from 1
	ID     string `json:"id,omitempty"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// ImportReport says what an import did.
type ImportReport struct {
	Lines     int `json:"lines"`     // lines read, blank ones included
	Documents int `json:"documents"` // documents in the file
	Batches   int `json:"batches"`
	// Written is the number of documents committed, by this run or (for a
	// repeated import) an earlier one.
	Written int `json:"written"`
	// Transactions are the ids of the committed batches, in order.
	Transactions []string    `json:"transactions"`
	Rejected     []Rejection `json:"rejected"`
}

// Transactor applies a transaction body to the dataset being imported
// into, as Engine.Transact or the NATS client's Mutate does. A rejection
// must be returned as an error with an ErrorCode (such as *Error).
type Transactor func(ctx context.Context, body []byte) error

// importDoc is one document line.
type importDoc struct {
	line int
	id   string
	raw  []byte // compacted JSON
}

type importBatch struct {
	docs []importDoc
	txid string
}

// readImport reads and checks an NDJSON file: one JSON document per line
// (blank lines are skipped), each an object with a valid _id, a non-empty
// string _type, an _id not seen before in the file, and small enough for a
// batch. It returns the documents in batches, with transaction ids derived
// from the content, and the report so far (Lines, Documents, Batches,
// Rejected).
func readImport(r io.Reader, opts ImportOptions) ([]importBatch, *ImportReport, error) {
	opts = opts.withDefaults()
	rep := &ImportReport{Transactions: []string{}, Rejected: []Rejection{}}
	reject := func(line int, id, code, format string, args ...any) {
		rep.Rejected = append(rep.Rejected, Rejection{Line: line, ID: id, Code: code, Reason: fmt.Sprintf(format, args...)})
	}
	sum := sha256.New()
	br := bufio.NewReaderSize(r, 1<<20)
	seen := map[string]int{}
	var docs []importDoc
	var compact bytes.Buffer
	for len(rep.Rejected) < opts.MaxRejections {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && err == io.EOF {
			break
		}
		if err != nil && err != io.EOF {
			return nil, rep, fmt.Errorf("import: reading line %d: %w", rep.Lines+1, err)
		}
		rep.Lines++
		n := rep.Lines
		sum.Write(line)
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var fields map[string]json.RawMessage
		if jerr := json.Unmarshal(line, &fields); jerr != nil || fields == nil {
			reason := "not a JSON object"
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			switch {
			case errors.As(jerr, &se):
				reason = fmt.Sprintf("malformed JSON at column %d: %v", se.Offset, se)
			case errors.As(jerr, &te):
				reason = fmt.Sprintf("a JSON %s, not a document (an object)", te.Value)
			}
			reject(n, "", "malformedDocument", "%s", reason)
			continue
		}
		var id, typ string
		if rawID, ok := fields["_id"]; !ok || json.Unmarshal(rawID, &id) != nil {
			reject(n, "", "invalidDocumentId", "no _id string: every document needs its _id (as export writes them)")
			continue
		}
		if err := docid.Validate(id); err != nil {
			reject(n, id, "invalidDocumentId", "%s", AsError(err).Description)
			continue
		}
		if rawType, ok := fields["_type"]; !ok || json.Unmarshal(rawType, &typ) != nil || typ == "" {
			reject(n, id, "malformedDocument", "no _type: a document needs a non-empty string _type")
			continue
		}
		if first, dup := seen[id]; dup {
			reject(n, id, "duplicateId", "_id %q is already on line %d; a file holds each document once", id, first)
			continue
		}
		seen[id] = n
		compact.Reset()
		if err := json.Compact(&compact, line); err != nil {
			reject(n, id, "malformedDocument", "%v", err)
			continue
		}
		if size := compact.Len() + batchOverhead; size > opts.MaxBatchBytes {
			reject(n, id, "documentTooLarge", "the document is %d bytes, more than the %d bytes one request may carry", compact.Len(), opts.MaxBatchBytes-batchOverhead)
			continue
		}
		docs = append(docs, importDoc{line: n, id: id, raw: bytes.Clone(compact.Bytes())})
	}
	rep.Documents = len(docs)
	if len(rep.Rejected) >= opts.MaxRejections {
		reject(rep.Lines, "", "tooManyRejections", "stopped checking after %d rejected lines", opts.MaxRejections)
	}
	// Batches: at most BatchSize documents and MaxBatchBytes bytes each.
	fileSum := sum.Sum(nil)
	var batches []importBatch
	var cur importBatch
	size := batchOverhead
	for _, d := range docs {
		if len(cur.docs) > 0 && (len(cur.docs) >= opts.BatchSize || size+len(d.raw)+mutationOverhead > opts.MaxBatchBytes) {
			batches = append(batches, cur)
			cur, size = importBatch{}, batchOverhead
		}
		cur.docs = append(cur.docs, d)
		size += len(d.raw) + mutationOverhead
	}
	if len(cur.docs) > 0 {
		batches = append(batches, cur)
	}
	// A batch's transaction id is derived from the file and the batch's
	// documents: the same import, batched alike, has the same ids.
	for i := range batches {
		h := sha256.New()
		h.Write(fileSum)
		h.Write(batches[i].body(false, nil))
		batches[i].txid = "import-" + hex.EncodeToString(h.Sum(nil))[:26]
	}
	rep.Batches = len(batches)
	return batches, rep, nil
}

// Sizes around the documents of a transaction body.
const (
	batchOverhead    = len(`{"transactionId":"import-01234567890123456789012345","dryRun":true,"mutations":[]}`)
	mutationOverhead = len(`{"createOrReplace":},`)
)

func (o ImportOptions) withDefaults() ImportOptions {
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 512 << 10
	}
	if o.MaxRejections <= 0 {
		o.MaxRejections = 1000
	}
	return o
}

// body is the transaction of a batch, without some documents (skip, by
// index in the batch) when a dry run rejected them.
func (b *importBatch) body(dryRun bool, skip map[int]bool) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"transactionId":`)
	buf.WriteString(strconv.Quote(b.txid))
	if dryRun {
		buf.WriteString(`,"dryRun":true`)
	}
	buf.WriteString(`,"mutations":[`)
	first := true
	for i, d := range b.docs {
		if skip[i] {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		buf.WriteString(`{"createOrReplace":`)
		buf.Write(d.raw)
		buf.WriteByte('}')
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}

// Import loads the NDJSON documents of r into a dataset through tx, in
// batches of createOrReplace mutations (see the comment at the top of this
// file). It returns the report and, when lines were rejected, an
// importRejected error (nothing was written); when a batch failed while
// writing, an importIncomplete error saying what was committed.
func Import(ctx context.Context, r io.Reader, tx Transactor, opts ImportOptions) (*ImportReport, error) {
	opts = opts.withDefaults()
	batches, rep, err := readImport(r, opts)
	if err != nil {
		return rep, err
	}
	total := int64(rep.Documents)
	// Pass 1: dry runs, dropping each rejected document and trying the
	// rest again, so that every rejected line is found.
	var done int64
	for bi := range batches {
		b := &batches[bi]
		skip := map[int]bool{}
		for len(skip) < len(b.docs) && len(rep.Rejected) < opts.MaxRejections {
			err := tx(ctx, b.body(true, skip))
			if err == nil {
				break
			}
			e := AsError(err)
			i := rejectedIndex(e, b, skip)
			if i < 0 {
				// Not about one document (the daemon is down, the
				// dataset does not exist, the caller may not write at
				// all): nothing can be imported.
				return rep, err
			}
			skip[i] = true
			rep.Rejected = append(rep.Rejected, Rejection{Line: b.docs[i].line, ID: b.docs[i].id, Code: e.Code, Reason: e.Description})
		}
		done += int64(len(b.docs))
		if opts.Progress != nil {
			opts.Progress("check", done, total)
		}
	}
	if len(rep.Rejected) > 0 {
		return rep, &Error{Code: CodeImportRejected, Details: map[string]any{"rejected": len(rep.Rejected)},
			Description: fmt.Sprintf("%d of %d lines rejected (the first: line %d, %s); nothing was written", len(rep.Rejected), rep.Lines, rep.Rejected[0].Line, rep.Rejected[0].Reason)}
	}
	// Pass 2: write.
	done = 0
	for bi := range batches {
		b := &batches[bi]
		if err := tx(ctx, b.body(false, nil)); err != nil {
			e := AsError(err)
			if bi == 0 {
				return rep, &Error{Code: e.Code, ID: e.ID, Details: e.Details,
					Description: fmt.Sprintf("the first batch failed: %s; nothing was written", e.Description)}
			}
			return rep, &Error{Code: CodeImportIncomplete, Details: map[string]any{"committed": rep.Transactions, "cause": e},
				Description: fmt.Sprintf("batch %d of %d (lines %d to %d) failed: %s: %s; batches 1 to %d (%d documents) are committed. Run the same import again to complete it: committed batches are recognized by their transaction ids and not applied twice",
					bi+1, len(batches), b.docs[0].line, b.docs[len(b.docs)-1].line, e.Code, e.Description, bi, rep.Written)}
		}
		rep.Transactions = append(rep.Transactions, b.txid)
		rep.Written += len(b.docs)
		done += int64(len(b.docs))
		if opts.Progress != nil {
			opts.Progress("write", done, total)
		}
	}
	return rep, nil
}

// rejectedIndex returns the index in b of the document a dry run's error
// is about (by its mutation index, else its document id), or -1 when it is
// about none.
func rejectedIndex(e *Error, b *importBatch, skip map[int]bool) int {
	if e.Index != nil {
		// The index counts the mutations sent, which leave out skip.
		k := *e.Index
		for i := range b.docs {
			if skip[i] {
				continue
			}
			if k == 0 {
				return i
			}
			k--
		}
	}
	if e.ID != "" {
		for i, d := range b.docs {
			if d.id == e.ID && !skip[i] {
				return i
			}
		}
	}
	return -1
}

// EngineTransactor returns a Transactor that applies transactions to
// dataset name of e as p.
func (e *Engine) EngineTransactor(name string, p *authz.Principal) Transactor {
	return func(ctx context.Context, body []byte) error {
		_, err := e.Transact(ctx, name, p, body)
		return err
	}
}
