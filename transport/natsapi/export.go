package natsapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/micro"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
)

// Export and replay over NATS (docs/export-replay.md). A NATS message is
// limited (1 MiB by default), so both are paged: each request names where
// the previous page ended, and the first page fixes the point every later
// page shows, so a long export or replay sees one consistent state however
// many writes happen meanwhile. The client drives the loop; a page that
// times out can be asked for again.
const (
	subjectExport = datasetPrefix + "*.export"
	subjectEvents = datasetPrefix + "*.events"
	opExport      = "export"
	opEvents      = "events"
)

// ExportSubject returns the subject of dataset's export endpoint.
func ExportSubject(dataset string) (string, error) { return datasetSubject(dataset, opExport) }

// EventsSubject returns the subject of dataset's log-reading (replay)
// endpoint.
func EventsSubject(dataset string) (string, error) { return datasetSubject(dataset, opEvents) }

// ExportRequest asks for one page of an export.
type ExportRequest struct {
	// At is the point exported: "" (the head), an event sequence number, an
	// RFC 3339 time or a transaction id. Ignored once Seq is set.
	At string `json:"at,omitempty"`
	// Seq is the page's point as the first page answered it (0 on the
	// first request).
	Seq uint64 `json:"seq,omitempty"`
	// After is the id of the last document received ("" on the first).
	After    string `json:"after,omitempty"`
	NoDrafts bool   `json:"noDrafts,omitempty"`
	System   bool   `json:"system,omitempty"`
	// MaxBytes bounds the page's documents; 0 (or more than the server's
	// NATS payload allows) means as much as a message can carry.
	MaxBytes int `json:"maxBytes,omitempty"`
}

// EventsRequest asks for one page of a dataset's log, for a replay.
type EventsRequest struct {
	// To is the last event wanted: "" (the head), an event sequence number,
	// an RFC 3339 time or a transaction id. Ignored once ToSeq is set.
	To string `json:"to,omitempty"`
	// ToSeq is To as the first page answered it (0 on the first request).
	ToSeq uint64 `json:"toSeq,omitempty"`
	// After is the sequence number of the last event received.
	After    uint64 `json:"after,omitempty"`
	MaxBytes int    `json:"maxBytes,omitempty"`
	// Limit, when not 0, is the most events the page may hold.
	Limit int `json:"limit,omitempty"`
}

// DefaultPageBytes is the size of an export, events or transactions page
// when the request names none (maxBytes): large enough that a page's own
// costs (a request, an answer, a header) vanish next to its content, small
// enough that a client's work on one page overlaps the transfer of the
// next. Against vellumd's embedded server, whose messages may be 64 MiB,
// pages as large as a message made `vellum replay` of 100,000 events wait a
// third of a second for its first page of 64 MiB before it could start.
const DefaultPageBytes = 1 << 20

// pageBytes is the payload a page may fill: want when want > 0, else
// DefaultPageBytes, and at most what the connection allows, less room for
// the envelope (3/4 of that for base64-encoded content).
func (s *Server) pageBytes(want int, base64 bool) int {
	max := int(s.nc.MaxPayload()) - 16<<10
	if base64 {
		max = max / 4 * 3
	}
	if want <= 0 {
		want = DefaultPageBytes
	}
	return min(want, max)
}

func (s *Server) exportPage(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	dataset, err := datasetFromSubject(req.Subject(), opExport)
	if err != nil {
		return nil, err
	}
	var r ExportRequest
	if err := decodeStrict(req.Data(), &r, `{"at":"<seq|time|txid>","seq":N,"after":"<id>","noDrafts":bool,"system":bool,"maxBytes":N}`); err != nil {
		return nil, err
	}
	at, err := vellum.ParsePoint(r.At)
	if err != nil {
		return nil, err
	}
	page, err := s.eng.ExportPage(ctx, dataset, p, vellum.ExportOptions{
		At: at, Seq: r.Seq, After: r.After, NoDrafts: r.NoDrafts, System: r.System,
		MaxBytes: s.pageBytes(r.MaxBytes, false),
	})
	if err != nil {
		return nil, err
	}
	// The page is NDJSON: a header line, then one document per line, as
	// stored (compact JSON never holds a raw newline). Neither side has to
	// parse the documents.
	head, err := marshal(exportHeader{Seq: page.Seq, Count: len(page.Documents), Next: page.Next, More: page.More})
	if err != nil {
		return nil, err
	}
	size := len(head)
	for _, d := range page.Documents {
		size += 1 + len(d)
	}
	if max := s.nc.MaxPayload(); int64(size) > max {
		var doc struct {
			ID string `json:"_id"`
		}
		json.Unmarshal(page.Documents[0], &doc)
		return nil, &vellum.Error{Code: "documentTooLarge", Description: fmt.Sprintf(
			"document %q needs a %d-byte message, more than the %d bytes the NATS server allows (raise its max_payload)", doc.ID, size, max)}
	}
	body := make([]byte, 0, size)
	body = append(body, head...)
	for _, d := range page.Documents {
		body = append(body, '\n')
		body = append(body, d...)
	}
	return body, nil
}

// exportHeader is the first line of an export page.
type exportHeader struct {
	Seq   uint64 `json:"seq"`
	Count int    `json:"count"`
	Next  string `json:"next,omitempty"`
	More  bool   `json:"more"`
}

func (s *Server) eventsPage(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	dataset, err := datasetFromSubject(req.Subject(), opEvents)
	if err != nil {
		return nil, err
	}
	var r EventsRequest
	if err := decodeStrict(req.Data(), &r, `{"to":"<seq|time|txid>","toSeq":N,"after":N,"maxBytes":N,"limit":N}`); err != nil {
		return nil, err
	}
	to, err := vellum.ParsePoint(r.To)
	if err != nil {
		return nil, err
	}
	page, err := s.eng.EventsPage(ctx, dataset, p, vellum.EventsOptions{
		To: to, ToSeq: r.ToSeq, After: r.After, MaxBytes: s.pageBytes(r.MaxBytes, false), Limit: r.Limit,
		Framed: true, HeaderRoom: eventsHeaderRoom,
	})
	if err != nil {
		return nil, err
	}
	// The page is a header line (JSON) followed by the events as the log
	// stores them, each preceded by its length (uvarint): neither side
	// encodes, escapes or parses the events' bytes. The engine framed them
	// after room for the header, which goes right in front of them.
	head, err := marshal(eventsHeader{Dataset: page.Dataset, To: page.To, Head: page.Head, ACL: page.ACL, Count: page.Count, More: page.More})
	if err != nil {
		return nil, err
	}
	framed := page.Framed
	if len(framed) < eventsHeaderRoom {
		framed = make([]byte, eventsHeaderRoom) // an empty page
	}
	events := framed[eventsHeaderRoom:]
	var body []byte
	if n := len(head) + 1; n <= eventsHeaderRoom {
		body = framed[eventsHeaderRoom-n:]
		copy(body, head)
		body[len(head)] = '\n'
	} else {
		body = append(append(append(make([]byte, 0, n+len(events)), head...), '\n'), events...)
	}
	// The engine counts each event's length and framing against MaxBytes,
	// which leaves room for the header: only a single event can be too
	// large.
	if max := s.nc.MaxPayload(); int64(len(body)) > max {
		return nil, &vellum.Error{Code: "documentTooLarge", Description: fmt.Sprintf(
			"event %d needs a %d-byte message, more than the %d bytes the NATS server allows (raise its max_payload)", r.After+1, len(body), max)}
	}
	return body, nil
}

// eventsHeaderRoom is the room the engine leaves in front of an events
// page's framed events for its header line: enough for any header (a
// dataset name is at most 64 characters), else the page is copied once more.
const eventsHeaderRoom = 256

// eventsHeader is the first line of an events page.
type eventsHeader struct {
	Dataset string `json:"dataset"`
	To      uint64 `json:"to"`
	Head    uint64 `json:"head"`
	ACL     string `json:"aclMode"`
	Count   int    `json:"count"`
	More    bool   `json:"more"`
}

// fitPage encodes a page, or explains that its one item is larger than a
// NATS message may be.
func (s *Server) fitPage(page any, first func() string) ([]byte, error) {
	body, err := marshal(page)
	if err != nil {
		return nil, err
	}
	if max := s.nc.MaxPayload(); int64(len(body)) > max {
		return nil, &vellum.Error{Code: "documentTooLarge", Description: fmt.Sprintf(
			"%s needs a %d-byte message, more than the %d bytes the NATS server allows (raise its max_payload)", first(), len(body), max)}
	}
	return body, nil
}

// ExportPage asks for one page of an export of dataset.
func (c *Client) ExportPage(ctx context.Context, dataset string, r ExportRequest) (*vellum.ExportPage, error) {
	subject, err := ExportSubject(dataset)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	data, err := c.request(ctx, subject, body)
	if err != nil {
		return nil, err
	}
	line, rest, _ := bytes.Cut(data, []byte{'\n'})
	var h exportHeader
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, fmt.Errorf("natsapi: the export page's first line is not its header: %w", err)
	}
	page := &vellum.ExportPage{Seq: h.Seq, Next: h.Next, More: h.More, Documents: make([]json.RawMessage, 0, h.Count)}
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		page.Documents = append(page.Documents, line)
	}
	if len(page.Documents) != h.Count {
		return nil, fmt.Errorf("natsapi: the export page holds %d documents, its header says %d", len(page.Documents), h.Count)
	}
	return page, nil
}

// Export asks for every page of an export of dataset, in order, and calls
// fn with each document. It returns the point (sequence number) exported.
func (c *Client) Export(ctx context.Context, dataset string, r ExportRequest, fn func(doc json.RawMessage) error) (uint64, error) {
	for {
		page, err := c.ExportPage(ctx, dataset, r)
		if err != nil {
			return r.Seq, err
		}
		for _, d := range page.Documents {
			if err := fn(d); err != nil {
				return page.Seq, err
			}
		}
		if !page.More {
			return page.Seq, nil
		}
		r.Seq, r.After = page.Seq, page.Next
	}
}

// EventsPage asks for one page of dataset's log, for a replay. The
// page's events alias the response's memory.
func (c *Client) EventsPage(ctx context.Context, dataset string, r EventsRequest) (*vellum.EventsPage, error) {
	subject, err := EventsSubject(dataset)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	data, err := c.request(ctx, subject, body)
	if err != nil {
		return nil, err
	}
	return decodeEventsPage(data)
}

// decodeEventsPage decodes an events page: a JSON header line, then each
// event as a uvarint length and its bytes.
func decodeEventsPage(data []byte) (*vellum.EventsPage, error) {
	line, rest, ok := bytes.Cut(data, []byte{'\n'})
	var h eventsHeader
	if err := json.Unmarshal(line, &h); err != nil || !ok {
		return nil, fmt.Errorf("natsapi: the events page's first line is not its header (%v)", err)
	}
	if h.Count < 0 || h.Count > len(rest) {
		return nil, fmt.Errorf("natsapi: the events page's header announces %d events in %d bytes", h.Count, len(rest))
	}
	page := &vellum.EventsPage{Dataset: h.Dataset, To: h.To, Head: h.Head, ACL: h.ACL, More: h.More, Events: make([][]byte, 0, h.Count)}
	for len(rest) > 0 {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return nil, fmt.Errorf("natsapi: event %d of the events page is cut off (%d bytes left)", len(page.Events)+1, len(rest))
		}
		page.Events = append(page.Events, rest[k:k+int(n):k+int(n)])
		rest = rest[k+int(n):]
	}
	if len(page.Events) != h.Count {
		return nil, fmt.Errorf("natsapi: the events page holds %d events, its header says %d", len(page.Events), h.Count)
	}
	return page, nil
}
