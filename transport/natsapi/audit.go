package natsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
)

// The auditor's endpoints (docs/audit.md): documents at a revision or time,
// the transaction log (paged), verification with progress, and access at a
// time. The engine decides who may use them; this file decodes requests
// and encodes answers.
const (
	subjectHistory      = datasetPrefix + "*.history"
	subjectTransactions = datasetPrefix + "*.transactions"
	subjectAccessAt     = datasetPrefix + "*.access"
	opHistory           = "history"
	opTransactions      = "transactions"
	opAccessAt          = "access"

	// SubjectVerify verifies one dataset, or the system dataset
	// ("_system", whose name is not a subject token).
	SubjectVerify = Prefix + ".audit.verify"
)

// HistorySubject returns the subject of dataset's history endpoint.
func HistorySubject(dataset string) (string, error) { return datasetSubject(dataset, opHistory) }

// TransactionsSubject returns the subject of dataset's transaction-log
// endpoint.
func TransactionsSubject(dataset string) (string, error) {
	return datasetSubject(dataset, opTransactions)
}

// AccessAtSubject returns the subject of dataset's access-at-a-time
// endpoint.
func AccessAtSubject(dataset string) (string, error) { return datasetSubject(dataset, opAccessAt) }

// HistoryRequest asks for documents as they were at a revision (a
// transaction id) or a time (RFC 3339): exactly one of the two.
type HistoryRequest struct {
	IDs      []string `json:"ids"`
	Revision string   `json:"revision,omitempty"`
	Time     string   `json:"time,omitempty"`
}

// HistoryResponse is the body of a history response, as Sanity's history
// API answers: the documents, in the order of the ids.
type HistoryResponse struct {
	Documents []json.RawMessage `json:"documents"`
}

// TransactionsRequest asks for one page of a dataset's transaction log
// (see vellum.LogFilter). From and To are each "" (the start, the head),
// an event sequence number, an RFC 3339 time or a transaction id.
type TransactionsRequest struct {
	IDs     []string `json:"ids,omitempty"`
	From    string   `json:"from,omitempty"`
	To      string   `json:"to,omitempty"`
	Author  string   `json:"author,omitempty"`
	Limit   int      `json:"limit,omitempty"` // 0: no limit; a page may hold fewer
	Reverse bool     `json:"reverse,omitempty"`
	// After is the Seq of the last entry received (0 on the first page).
	After    uint64 `json:"after,omitempty"`
	MaxBytes int    `json:"maxBytes,omitempty"`
}

// TransactionsPage is one page of the transaction log.
type TransactionsPage struct {
	Transactions []*vellum.LogEntry `json:"transactions"`
	// More says that the log may go on: ask again with After set to the
	// Seq of the last entry.
	More bool `json:"more"`
}

// VerifyRequest asks to verify a dataset. Progress, if not "", is a
// subject in the requester's own reply inbox (nats.Conn.NewRespInbox) to
// which the service publishes VerifyProgress messages while it works.
type VerifyRequest struct {
	Dataset  string `json:"dataset"`
	Progress string `json:"progress,omitempty"`
}

// VerifyProgress is a progress message of a verification.
type VerifyProgress struct {
	Done  uint64 `json:"done"`
	Total uint64 `json:"total"`
}

// VerifyResponse is the body of a successful verification.
type VerifyResponse struct {
	Dataset string `json:"dataset"`
	Events  uint64 `json:"events"`
}

// AccessAtRequest asks who could read and update document ID at time At
// (RFC 3339).
type AccessAtRequest struct {
	ID string `json:"id"`
	At string `json:"at"`
}

// connectFlushTimeout bounds the wait for the server to know a progress
// subscription.
const connectFlushTimeout = 5 * time.Second

// parseTime parses an RFC 3339 time given in field of a request.
func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, &vellum.Error{Code: vellum.CodeInvalidTime, Description: fmt.Sprintf(
			"%s: malformed time %q: use RFC 3339, such as 2026-11-23T10:00:00Z or 2026-11-23T11:00:00.5+01:00", field, s)}
	}
	return t.UTC(), nil
}

func (s *Server) history(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	dataset, err := datasetFromSubject(req.Subject(), opHistory)
	if err != nil {
		return nil, err
	}
	var r HistoryRequest
	if err := decodeStrict(req.Data(), &r, `{"ids":["<id>",...],"revision":"<txid>"} or {"ids":[...],"time":"<RFC 3339>"}`); err != nil {
		return nil, err
	}
	opts := vellum.HistoryOptions{Revision: r.Revision}
	if r.Time != "" {
		if opts.Time, err = parseTime("time", r.Time); err != nil {
			return nil, err
		}
	}
	docs, err := s.eng.HistoryDocuments(ctx, dataset, p, r.IDs, opts)
	if err != nil {
		return nil, err
	}
	return s.fitPage(HistoryResponse{Documents: docs}, func() string { return fmt.Sprintf("the %d documents asked for", len(docs)) })
}

func (s *Server) transactions(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	dataset, err := datasetFromSubject(req.Subject(), opTransactions)
	if err != nil {
		return nil, err
	}
	var r TransactionsRequest
	if err := decodeStrict(req.Data(), &r, `{"ids":[...],"from":"<seq|time|txid>","to":"<seq|time|txid>","author":"<identity>","limit":N,"reverse":bool,"after":N,"maxBytes":N}`); err != nil {
		return nil, err
	}
	f := vellum.LogFilter{IDs: r.IDs, Author: r.Author, Limit: r.Limit, Reverse: r.Reverse, After: r.After}
	if f.From, err = vellum.ParsePoint(r.From); err != nil {
		return nil, err
	}
	if f.To, err = vellum.ParsePoint(r.To); err != nil {
		return nil, err
	}
	maxBytes := s.pageBytes(r.MaxBytes, false)
	page := &TransactionsPage{Transactions: []*vellum.LogEntry{}}
	size := 0
	for le, err := range s.eng.TransactionLog(ctx, dataset, p, f) {
		if err != nil {
			return nil, err
		}
		b, err := marshal(le)
		if err != nil {
			return nil, err
		}
		if len(page.Transactions) > 0 && size+len(b) > maxBytes {
			page.More = true
			break
		}
		page.Transactions = append(page.Transactions, le)
		size += len(b) + 1
	}
	return s.fitPage(page, func() string { return fmt.Sprintf("transaction %s", page.Transactions[0].ID) })
}

func (s *Server) verify(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	var r VerifyRequest
	if err := decodeStrict(req.Data(), &r, `{"dataset":"<dataset>","progress":"<subject in your reply inbox>"}`); err != nil {
		return nil, err
	}
	if r.Progress != "" {
		if err := checkProgressSubject(r.Progress, req.Reply()); err != nil {
			return nil, err
		}
	}
	var last time.Time
	n, err := s.eng.VerifyDataset(ctx, r.Dataset, p, func(done, total uint64) {
		if r.Progress == "" || (time.Since(last) < 200*time.Millisecond && done < total) {
			return
		}
		last = time.Now()
		if b, err := marshal(VerifyProgress{Done: done, Total: total}); err == nil {
			_ = s.nc.Publish(r.Progress, b) // progress is best effort
		}
	})
	if err != nil {
		return nil, err
	}
	return marshal(VerifyResponse{Dataset: r.Dataset, Events: n})
}

// checkProgressSubject accepts a progress subject only in the requester's
// own reply inbox: the reply subject with its last token replaced by
// another plain token. So a request cannot make the service publish
// anywhere else.
func checkProgressSubject(progress, reply string) error {
	i := strings.LastIndexByte(reply, '.')
	bad := func(why string) error {
		return &vellum.Error{Code: "malformedRequest", Description: fmt.Sprintf(
			"progress subject %q: %s (use nats.Conn.NewRespInbox)", progress, why)}
	}
	if i < 0 || !strings.HasPrefix(reply, InboxRoot+".") {
		return bad("the request's reply subject is not an inbox")
	}
	tok, ok := strings.CutPrefix(progress, reply[:i+1])
	if !ok {
		return bad("it is not in the request's reply inbox " + reply[:i+1] + "*")
	}
	if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") {
		return bad("its last token must be one plain token")
	}
	return nil
}

func (s *Server) accessAt(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	dataset, err := datasetFromSubject(req.Subject(), opAccessAt)
	if err != nil {
		return nil, err
	}
	var r AccessAtRequest
	if err := decodeStrict(req.Data(), &r, `{"id":"<document id>","at":"<RFC 3339 time>"}`); err != nil {
		return nil, err
	}
	t, err := parseTime("at", r.At)
	if err != nil {
		return nil, err
	}
	rep, err := s.eng.AccessAt(ctx, dataset, p, r.ID, t)
	if err != nil {
		return nil, err
	}
	return marshal(rep)
}

// History asks for documents of dataset as they were at a revision or a
// time.
func (c *Client) History(ctx context.Context, dataset string, r HistoryRequest) ([]json.RawMessage, error) {
	subject, err := HistorySubject(dataset)
	if err != nil {
		return nil, err
	}
	var resp HistoryResponse
	if err := c.call(ctx, subject, r, &resp, "a history response"); err != nil {
		return nil, err
	}
	return resp.Documents, nil
}

// TransactionsPage asks for one page of dataset's transaction log.
func (c *Client) TransactionsPage(ctx context.Context, dataset string, r TransactionsRequest) (*TransactionsPage, error) {
	subject, err := TransactionsSubject(dataset)
	if err != nil {
		return nil, err
	}
	var page TransactionsPage
	if err := c.call(ctx, subject, r, &page, "a page of transactions"); err != nil {
		return nil, err
	}
	return &page, nil
}

// Transactions asks for every page of dataset's transaction log that r
// selects, and calls fn with each entry, in order, until r.Limit entries
// (if positive) were received.
func (c *Client) Transactions(ctx context.Context, dataset string, r TransactionsRequest, fn func(*vellum.LogEntry) error) error {
	return TransactionPages(r, func(r TransactionsRequest) (*TransactionsPage, error) {
		return c.TransactionsPage(ctx, dataset, r)
	}, fn)
}

// TransactionPages drives the paging of a transaction-log listing: it
// calls get for each page (so that the caller can give each its own
// deadline) and fn for each entry, until the log or r.Limit ends.
func TransactionPages(r TransactionsRequest, get func(TransactionsRequest) (*TransactionsPage, error), fn func(*vellum.LogEntry) error) error {
	left := r.Limit
	for {
		page, err := get(r)
		if err != nil {
			return err
		}
		for _, le := range page.Transactions {
			if err := fn(le); err != nil {
				return err
			}
		}
		if left > 0 {
			left -= len(page.Transactions)
			if left <= 0 {
				return nil
			}
			r.Limit = left
		}
		if !page.More || len(page.Transactions) == 0 {
			return nil
		}
		r.After = page.Transactions[len(page.Transactions)-1].Seq
	}
}

// Verify verifies dataset ("_system" for the system dataset) and returns
// the number of events verified. progress, if not nil, is called with the
// service's progress messages as they arrive, on another goroutine (the
// last ones possibly just after Verify returns).
func (c *Client) Verify(ctx context.Context, dataset string, progress func(done, total uint64)) (uint64, error) {
	r := VerifyRequest{Dataset: dataset}
	if progress != nil {
		r.Progress = c.nc.NewRespInbox()
		sub, err := c.nc.Subscribe(r.Progress, func(m *nats.Msg) {
			var pm VerifyProgress
			if json.Unmarshal(m.Data, &pm) == nil {
				progress(pm.Done, pm.Total)
			}
		})
		if err != nil {
			return 0, err
		}
		// Drain, not Unsubscribe: progress messages that arrived before the
		// answer are still handed to progress.
		defer sub.Drain()
		if err := c.nc.FlushTimeout(connectFlushTimeout); err != nil {
			return 0, err
		}
	}
	var resp VerifyResponse
	if err := c.call(ctx, SubjectVerify, r, &resp, "a verification result"); err != nil {
		return 0, err
	}
	return resp.Events, nil
}

// AccessAt asks who could read and update document id of dataset at time
// at (RFC 3339).
func (c *Client) AccessAt(ctx context.Context, dataset, id, at string) (*vellum.AccessReport, error) {
	subject, err := AccessAtSubject(dataset)
	if err != nil {
		return nil, err
	}
	var rep vellum.AccessReport
	if err := c.call(ctx, subject, AccessAtRequest{ID: id, At: at}, &rep, "an access report"); err != nil {
		return nil, err
	}
	return &rep, nil
}
