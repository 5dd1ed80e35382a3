package natsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
)

// Service identity reported by the micro framework ($SRV.INFO, nats micro ls).
const (
	ServiceName        = "vellum"
	ServiceVersion     = "0.1.0"
	ServiceDescription = "Vellum document store: transactions, document reads, datasets and access control"
)

// ErrorCodeHeader is the response header that carries the engine's error
// code (for example documentNotFound) next to micro's numeric status in
// micro.ErrorCodeHeader and its description in micro.ErrorHeader.
const ErrorCodeHeader = "Vellum-Error-Code"

// DefaultMaxInFlight is the default number of requests handled at once.
const DefaultMaxInFlight = 1024

// Options configure a Server.
type Options struct {
	// Auth authenticates every request. Required.
	Auth Authenticator
	// Logger receives one debug line per request and the internal errors;
	// nil means slog.Default().
	Logger *slog.Logger
	// MaxInFlight bounds the requests handled concurrently (0 means
	// DefaultMaxInFlight). Concurrent transactions are what lets the engine
	// share one sync among many of them; beyond the bound, requests wait in
	// their subscription's pending queue.
	MaxInFlight int
}

// A Server serves an engine as the micro service "vellum" on one NATS
// connection.
type Server struct {
	nc   *nats.Conn
	eng  *vellum.Engine
	svc  micro.Service
	auth Authenticator
	log  *slog.Logger

	sem     chan struct{}
	work    chan func()   // to an idle request goroutine (see run)
	idle    time.Duration // how long one waits for work (workerIdle)
	workers atomic.Int64  // request goroutines alive
	wg      sync.WaitGroup
	ctx     context.Context // the engine calls' context, cancelled by Close
	cancel  context.CancelFunc

	stats     map[string]*endpointStats // by subject; fixed after Serve
	closeOnce sync.Once
	closeErr  error
}

// endpointStats complement micro's own statistics, which cannot see the
// outcome of a request answered by another goroutine.
type endpointStats struct {
	inFlight  atomic.Int64
	requests  atomic.Int64
	errors    atomic.Int64
	lastError atomic.Value // string
}

// Serve registers the service on nc and starts answering requests. The
// Server takes nc for its own use: Close waits until nc has no subscription
// left, so nothing else should subscribe on it.
func Serve(nc *nats.Conn, eng *vellum.Engine, opts Options) (*Server, error) {
	if nc == nil || eng == nil || opts.Auth == nil {
		return nil, errors.New("natsapi: Serve needs a connection, an engine and an Authenticator")
	}
	s := &Server{
		nc:    nc,
		eng:   eng,
		auth:  opts.Auth,
		log:   opts.Logger,
		stats: make(map[string]*endpointStats),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	n := opts.MaxInFlight
	if n <= 0 {
		n = DefaultMaxInFlight
	}
	s.sem = make(chan struct{}, n)
	s.work, s.idle = make(chan func()), workerIdle
	s.ctx, s.cancel = context.WithCancel(context.Background())

	svc, err := micro.AddService(nc, micro.Config{
		Name:        ServiceName,
		Version:     ServiceVersion,
		Description: ServiceDescription,
		Metadata:    map[string]string{"api": Prefix},
		StatsHandler: func(ep *micro.Endpoint) any {
			st := s.stats[ep.Subject]
			if st == nil {
				return nil
			}
			last, _ := st.lastError.Load().(string)
			return map[string]any{
				"in_flight":  st.inFlight.Load(),
				"requests":   st.requests.Load(),
				"errors":     st.errors.Load(),
				"last_error": last,
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("natsapi: adding the micro service: %w", err)
	}
	s.svc = svc

	endpoints := []struct {
		name, subject, about string
		handle               asyncHandlerFunc
	}{
		{"mutate", subjectMutate, "apply a transaction to the dataset named by the subject's 4th token", s.mutate},
		{"get", subjectGet, "read documents by id from the dataset named by the subject's 4th token", synchronous(s.get)},
		{"datasetCreate", SubjectDatasetCreate, "create a dataset", synchronous(s.createDataset)},
		{"datasetList", SubjectDatasetList, "list the datasets", synchronous(s.listDatasets)},
		{"datasetAcl", SubjectDatasetACL, "change a dataset's acl mode (public or private)", synchronous(s.setDatasetACL)},
		{"tokenCreate", SubjectTokenCreate, "create a robot token; the response holds its secret, shown only then", synchronous(s.createToken)},
		{"tokenList", SubjectTokenList, "list the robot tokens (never their secrets)", synchronous(s.listTokens)},
		{"tokenRevoke", SubjectTokenRevoke, "revoke a robot token", synchronous(s.revokeToken)},
		{"explain", subjectExplain, "explain an identity's access to a document of the dataset named by the subject's 4th token", synchronous(s.explain)},
		{"listen", subjectListen, "listen to the changes of the dataset named by the subject's 4th token; events go to the reply subject (docs/listeners.md)", synchronous(s.listen)},
		{"export", subjectExport, "one page of an export (NDJSON documents as of a point) of the dataset named by the subject's 4th token", synchronous(s.exportPage)},
		{"events", subjectEvents, "one page of the log of the dataset named by the subject's 4th token, for a replay (administrators)", synchronous(s.eventsPage)},
		{"history", subjectHistory, "documents at a revision or time, under the caller's read grants, of the dataset named by the subject's 4th token", synchronous(s.history)},
		{"transactions", subjectTransactions, "one page of the transaction log (Sanity's shape, with grants) of the dataset named by the subject's 4th token", synchronous(s.transactions)},
		{"accessAt", subjectAccessAt, "who could read and update a document at a time, of the dataset named by the subject's 4th token", synchronous(s.accessAt)},
		{"verify", SubjectVerify, "verify a dataset's hash chain and projections against its log (administrators)", synchronous(s.verify)},
	}
	for _, ep := range endpoints {
		st := &endpointStats{}
		s.stats[ep.subject] = st
		err := svc.AddEndpoint(ep.name, s.handler(ep.name, st, ep.handle),
			micro.WithEndpointSubject(ep.subject),
			micro.WithEndpointMetadata(map[string]string{"description": ep.about}))
		if err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("natsapi: adding endpoint %s on %s: %w", ep.name, ep.subject, err)
		}
	}
	// Once Serve returns, the NATS server knows the subscriptions: a request
	// sent then finds the service.
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("natsapi: registering the service's subscriptions: %w", err)
	}
	return s, nil
}

// Info returns the micro service's description of itself.
func (s *Server) Info() micro.Info { return s.svc.Info() }

// Close stops taking requests, lets the ones already received finish and
// answer, and returns when they have or when ctx is done (then the engine
// calls still running are cancelled). It does not close the connection or
// the engine.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		defer s.cancel()
		// Stop drains the endpoints' subscriptions: the server stops
		// sending, and the messages already received are still handled.
		if err := s.svc.Stop(); err != nil {
			s.closeErr = fmt.Errorf("natsapi: stopping the service: %w", err)
			return
		}
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for s.nc.NumSubscriptions() > 0 && !s.nc.IsClosed() {
			select {
			case <-ctx.Done():
				s.closeErr = fmt.Errorf("natsapi: draining the service's subscriptions: %w", ctx.Err())
				return
			case <-tick.C:
			}
		}
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.closeErr = fmt.Errorf("natsapi: waiting for requests in flight: %w", ctx.Err())
			return
		}
		if err := s.nc.FlushWithContext(ctx); err != nil && !s.nc.IsClosed() {
			s.closeErr = fmt.Errorf("natsapi: flushing the last responses: %w", err)
		}
	})
	return s.closeErr
}

// A handlerFunc serves one authenticated request and returns the response
// body, or an error that becomes a typed error response.
type handlerFunc func(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error)

// An asyncHandlerFunc serves one authenticated request by calling answer
// exactly once, from any goroutine, with the response body or an error.
type asyncHandlerFunc func(ctx context.Context, p *authz.Principal, req micro.Request, answer func([]byte, error))

// synchronous makes h an asyncHandlerFunc that answers before it returns.
func synchronous(h handlerFunc) asyncHandlerFunc {
	return func(ctx context.Context, p *authz.Principal, req micro.Request, answer func([]byte, error)) {
		answer(h(ctx, p, req))
	}
}

// handler wraps h with authentication, concurrency, error mapping and
// logging. The subscription's goroutine only waits for a free slot; the
// request is handled on a goroutine of its own (see run), so that
// concurrent transactions reach the engine together. A request holds its
// slot until it is answered, which for a transaction happens after that
// goroutine has moved on.
func (s *Server) handler(name string, st *endpointStats, h asyncHandlerFunc) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		s.sem <- struct{}{}
		s.wg.Add(1)
		st.inFlight.Add(1)
		s.run(func() {
			start := time.Now()
			answer := func(body []byte, err error) {
				s.answer(name, st, req, start, body, err)
				st.inFlight.Add(-1)
				<-s.sem
				s.wg.Done()
			}
			p, err := s.authenticate(req)
			if err != nil {
				answer(nil, err)
				return
			}
			h(s.ctx, p, req, answer)
		})
	})
}

// workerIdle is how long a request goroutine waits for another request
// before it exits.
const workerIdle = 10 * time.Second

// run runs fn on an idle request goroutine, or on a new one. A request
// goroutine stays for the next request: a new goroutine for each request
// grew its stack anew each time, about 4 % of a transaction's CPU in
// BenchmarkMutate. At most one goroutine per slot of s.sem runs fn at once.
func (s *Server) run(fn func()) {
	select {
	case s.work <- fn:
	default:
		go s.worker(fn)
	}
}

// worker runs fn, then the functions handed to it through s.work, until it
// has waited s.idle for one or the server closes.
func (s *Server) worker(fn func()) {
	s.workers.Add(1)
	defer s.workers.Add(-1)
	idle := time.NewTimer(s.idle)
	defer idle.Stop()
	for {
		fn()
		idle.Reset(s.idle)
		select {
		case fn = <-s.work:
		case <-idle.C:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// authenticate returns the principal of the request's credential.
func (s *Server) authenticate(req micro.Request) (*authz.Principal, error) {
	token, err := bearerToken(req.Headers())
	if err != nil {
		return nil, err
	}
	return s.auth.Authenticate(s.ctx, token)
}

// answer sends a request's response, or err as a typed error response, and
// accounts for it in the endpoint's statistics and the debug log.
func (s *Server) answer(name string, st *endpointStats, req micro.Request, start time.Time, body []byte, err error) {
	st.requests.Add(1)
	if err != nil {
		e := vellum.AsError(err)
		status := Status(e.Code)
		st.errors.Add(1)
		st.lastError.Store(e.Code + ": " + e.Description)
		if status >= 500 {
			s.log.Error("request failed", "endpoint", name, "subject", req.Subject(), "code", e.Code, "error", err)
		}
		s.log.Debug("request", "endpoint", name, "subject", req.Subject(), "status", status, "code", e.Code, "duration", time.Since(start))
		s.respondError(req, e, status)
		return
	}
	if s.log.Enabled(s.ctx, slog.LevelDebug) { // spare the arguments' allocations otherwise
		s.log.Debug("request", "endpoint", name, "subject", req.Subject(), "status", 200, "duration", time.Since(start))
	}
	if err := s.respond(req, nil, body); err != nil {
		s.log.Warn("cannot send response", "endpoint", name, "subject", req.Subject(), "error", err)
	}
}

// respondError sends e as {"error":{...}} with micro's error headers: the
// status as the code and e's description as the description.
func (s *Server) respondError(req micro.Request, e *vellum.Error, status int) {
	body, err := marshal(errorBody{Error: e})
	if err != nil {
		// Details holds something JSON cannot encode; keep the rest.
		body, _ = marshal(errorBody{Error: &vellum.Error{Code: e.Code, Description: e.Description, Index: e.Index, ID: e.ID}})
	}
	desc := headerValue(e.Description)
	if desc == "" {
		desc = e.Code
	}
	h := nats.Header{}
	h.Set(micro.ErrorCodeHeader, strconv.Itoa(status))
	h.Set(micro.ErrorHeader, desc)
	h.Set(ErrorCodeHeader, e.Code)
	if err := s.respond(req, h, body); err != nil {
		s.log.Warn("cannot send error response", "subject", req.Subject(), "code", e.Code, "error", err)
	}
}

// respond publishes the reply to req on the server's connection. The reply
// is sent from the request's own goroutine, so it must not go through
// req.Respond or req.Error: micro reads the state they write when the
// subscription's handler returns, which it has already done.
func (s *Server) respond(req micro.Request, h nats.Header, body []byte) error {
	if req.Reply() == "" {
		return errors.New("the request has no reply subject")
	}
	return s.nc.PublishMsg(&nats.Msg{Subject: req.Reply(), Header: h, Data: body})
}

type errorBody struct {
	Error *vellum.Error `json:"error"`
}

// headerValue makes s safe as a NATS header value: one line.
func headerValue(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// mutate queues the transaction and returns: the engine answers it with
// the rest of its group once they are durable, so that the answers of one
// sync leave together and no goroutine waits per transaction.
func (s *Server) mutate(ctx context.Context, p *authz.Principal, req micro.Request, answer func([]byte, error)) {
	dataset, err := datasetFromSubject(req.Subject(), opMutate)
	if err != nil {
		answer(nil, err)
		return
	}
	err = s.eng.TransactAsync(ctx, dataset, p, req.Data(), func(res *vellum.TxResult, err error) {
		if err != nil {
			answer(nil, err)
			return
		}
		answer(marshal(res))
	})
	if err != nil {
		answer(nil, err)
	}
}

// GetRequest is the body of a get request.
type GetRequest struct {
	IDs         []string `json:"ids"`
	Perspective string   `json:"perspective,omitempty"` // raw (default), published or drafts
}

// GetResponse is the body of a get response: the documents found, in the
// order of the requested ids; missing ones are omitted.
type GetResponse struct {
	Documents []json.RawMessage `json:"documents"`
}

func (s *Server) get(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	dataset, err := datasetFromSubject(req.Subject(), opGet)
	if err != nil {
		return nil, err
	}
	var r GetRequest
	if err := decodeStrict(req.Data(), &r, `{"ids":["<id>",...],"perspective":"raw|published|drafts"}`); err != nil {
		return nil, err
	}
	if len(r.IDs) == 0 {
		return nil, malformed("the get request names no document: \"ids\" is missing or empty")
	}
	docs, err := s.eng.Get(ctx, dataset, p, r.IDs, r.Perspective)
	if err != nil {
		return nil, err
	}
	if docs == nil {
		docs = []json.RawMessage{}
	}
	return marshal(GetResponse{Documents: docs})
}

// CreateDatasetRequest is the body of a dataset creation request.
type CreateDatasetRequest struct {
	Name string `json:"name"`
	ACL  string `json:"aclMode,omitempty"` // public or private; "" lets the engine choose
}

func (s *Server) createDataset(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	var r CreateDatasetRequest
	if err := decodeStrict(req.Data(), &r, `{"name":"<dataset>","aclMode":"public|private"}`); err != nil {
		return nil, err
	}
	info, err := s.eng.CreateDataset(ctx, p, r.Name, r.ACL)
	if err != nil {
		return nil, err
	}
	return marshal(info)
}

// DatasetList is the body of a dataset list response.
type DatasetList struct {
	Datasets []vellum.DatasetInfo `json:"datasets"`
}

func (s *Server) listDatasets(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	if len(bytes.TrimSpace(req.Data())) > 0 {
		var empty struct{}
		if err := decodeStrict(req.Data(), &empty, `an empty body or {}`); err != nil {
			return nil, err
		}
	}
	list, err := s.eng.Datasets(ctx, p)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []vellum.DatasetInfo{}
	}
	return marshal(DatasetList{Datasets: list})
}

// decodeStrict decodes one JSON object into v, rejecting unknown fields and
// trailing data, with a malformedRequest error that shows the expected shape.
func decodeStrict(data []byte, v any, shape string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	if err != nil {
		return malformed(fmt.Sprintf("the request body is not %s: %v", shape, err))
	}
	return nil
}

func malformed(desc string) error {
	return &vellum.Error{Code: "malformedRequest", Description: desc}
}

// marshal is json.Marshal without HTML escaping, so that documents and
// descriptions keep their <, > and & as written.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
