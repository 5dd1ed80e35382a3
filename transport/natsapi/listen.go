package natsapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
)

// The listen protocol (docs/listeners.md).
//
// A client subscribes to an inbox of its own and sends a request on
// vellum.v1.ds.<dataset>.listen, with that inbox as the reply subject, the
// credential in the Authorization header and a ListenRequest body. Every
// message of the listener then goes to the inbox:
//
//   - a rejected request gets one error response, as every endpoint's
//     (micro's error headers, body {"error":{...}}), and nothing more;
//   - otherwise {"type":"welcome",...} comes first, then one message per
//     event: {"type":"mutation",...}, {"type":"error",...} for a filter
//     that failed on one document, and last {"type":"disconnect",...}
//     (the listener ended; resume from its lastEventId) or
//     {"type":"reconnect",...} (the daemon is stopping; listen again with
//     lastEventId);
//   - a message with an empty body is a heartbeat. The daemon sends one
//     every ListenHeartbeat, as a request whose reply subject is its own:
//     when the client's inbox has no subscriber any more, NATS answers
//     "no responders" and the daemon ends the listener. A client that
//     receives nothing for ListenLiveness knows that the daemon or the
//     listener is gone and listens again with its last event id.

// ListenHeartbeat is the interval of the daemon's heartbeats to a listener.
const ListenHeartbeat = 5 * time.Second

// ListenLiveness is how long a client waits without any message (events
// and heartbeats) before it considers its listener lost.
const ListenLiveness = 3 * ListenHeartbeat

const (
	subjectListen = datasetPrefix + "*.listen"
	opListen      = "listen"
)

// ListenSubject returns the subject of dataset's listen endpoint, or an
// invalidDatasetName error if dataset is not a valid dataset name.
func ListenSubject(dataset string) (string, error) { return datasetSubject(dataset, opListen) }

// ListenRequest is the body of a listen request.
type ListenRequest struct {
	// Filter is a GROQ filter (a pure function of one document: no *,
	// ->, ^), e.g. _type == "post"; "" listens to every document.
	Filter string `json:"filter,omitempty"`
	// Params are the filter's $parameters.
	Params map[string]any `json:"params,omitempty"`
	// IncludeResult adds the document after the change ("result");
	// IncludePrevious the document before it ("previous").
	IncludeResult   bool `json:"includeResult,omitempty"`
	IncludePrevious bool `json:"includePrevious,omitempty"`
	// LastEventID resumes after that event.
	LastEventID string `json:"lastEventId,omitempty"`
}

// ListenControl is the body of the welcome, disconnect and reconnect
// messages.
type ListenControl struct {
	Type        string        `json:"type"` // welcome, disconnect or reconnect
	ListenerID  string        `json:"listenerId,omitempty"`
	Dataset     string        `json:"dataset,omitempty"`
	LastEventID string        `json:"lastEventId,omitempty"` // where to resume
	Reason      string        `json:"reason,omitempty"`      // the error code of a disconnect
	Error       *vellum.Error `json:"error,omitempty"`
}

// Control message types.
const (
	ListenWelcome    = "welcome"
	ListenDisconnect = "disconnect"
	ListenReconnect  = "reconnect"
)

// CodeEventTooLarge is the code of the error event sent in place of an
// event whose encoding exceeds the NATS server's maximum payload.
const CodeEventTooLarge = "eventTooLarge"

// listenService holds a Server's listeners.
type listenService struct {
	s      *Server
	hbBase string // heartbeat replies come back on hbBase.<listener id>
	sub    *nats.Subscription
	pumps  sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*listenSession
	stopped  bool
}

type listenSession struct {
	reconnect atomic.Bool // the daemon stops: say so when the listener ends
	id        string
	dataset   string
	inbox     string
	l         *vellum.Listener
	incR      bool
	incP      bool
	gone      chan struct{} // closed when NATS said nobody listens on inbox
	once      sync.Once
}

var (
	listenServicesMu sync.Mutex
	listenServices   = map[*Server]*listenService{}
)

// listenHeartbeat is ListenHeartbeat, shortened by tests.
var listenHeartbeat = ListenHeartbeat

// listeners returns the Server's listen service, starting it on first use.
func (s *Server) listeners() (*listenService, error) {
	listenServicesMu.Lock()
	defer listenServicesMu.Unlock()
	if ls := listenServices[s]; ls != nil {
		if ls.isStopped() {
			return nil, &vellum.Error{Code: vellum.CodeUnavailable, Description: "the service is stopping"}
		}
		return ls, nil
	}
	ls := &listenService{s: s, hbBase: s.nc.NewInbox(), sessions: map[string]*listenSession{}}
	sub, err := s.nc.Subscribe(ls.hbBase+".*", ls.heartbeatReply)
	if err != nil {
		return nil, fmt.Errorf("natsapi: subscribing to the listeners' heartbeat replies: %w", err)
	}
	ls.sub = sub
	listenServices[s] = ls
	go ls.watchStop()
	return ls, nil
}

func (ls *listenService) isStopped() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.stopped
}

// watchStop ends every listener with a reconnect message when the service
// stops, and drops the heartbeat subscription so that Close can finish.
func (ls *listenService) watchStop() {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ls.s.ctx.Done():
		case <-tick.C:
			if !ls.s.svc.Stopped() && !ls.s.nc.IsClosed() {
				continue
			}
		}
		break
	}
	ls.mu.Lock()
	ls.stopped = true
	sessions := make([]*listenSession, 0, len(ls.sessions))
	for _, ss := range ls.sessions {
		sessions = append(sessions, ss)
	}
	ls.mu.Unlock()
	for _, ss := range sessions {
		ss.reconnect.Store(true)
		ss.l.Close()
	}
	// The pumps send their reconnect messages; then they are flushed
	// before the service lets its connection go.
	done := make(chan struct{})
	go func() { ls.pumps.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		ls.s.log.Warn("listeners: some did not stop within 5s")
	}
	_ = ls.s.nc.Flush()
	_ = ls.sub.Unsubscribe()
	listenServicesMu.Lock()
	delete(listenServices, ls.s)
	listenServicesMu.Unlock()
}

// heartbeatReply receives NATS's "no responders" for a heartbeat sent to a
// listener's inbox: nobody listens there any more.
func (ls *listenService) heartbeatReply(m *nats.Msg) {
	if m.Header.Get("Status") != "503" {
		return
	}
	id := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	ls.mu.Lock()
	ss := ls.sessions[id]
	ls.mu.Unlock()
	if ss != nil {
		ss.once.Do(func() { close(ss.gone) })
	}
}

func newListenerID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// listen is the listen endpoint: it starts a listener whose messages go to
// the request's reply subject. The welcome is sent here, before any event;
// the empty response the handler wrapper sends after it is a heartbeat.
func (s *Server) listen(ctx context.Context, p *authz.Principal, req micro.Request) ([]byte, error) {
	dataset, err := datasetFromSubject(req.Subject(), opListen)
	if err != nil {
		return nil, err
	}
	var r ListenRequest
	if len(bytes.TrimSpace(req.Data())) > 0 {
		if err := decodeStrict(req.Data(), &r, `{"filter":"<GROQ>","params":{...},"includeResult":bool,"includePrevious":bool,"lastEventId":"<txid#docId>"}`); err != nil {
			return nil, err
		}
	}
	inbox := req.Reply()
	if inbox == "" || strings.ContainsAny(inbox, "*> \t") {
		return nil, malformed(fmt.Sprintf("a listen request needs a reply subject without wildcards (the client's inbox), not %q", inbox))
	}
	ls, err := s.listeners()
	if err != nil {
		return nil, err
	}
	token, _ := bearerToken(req.Headers()) // checked by the wrapper already
	ss := &listenSession{id: newListenerID(), dataset: dataset, inbox: inbox,
		incR: r.IncludeResult, incP: r.IncludePrevious, gone: make(chan struct{})}
	// Nothing may reach the inbox before the welcome.
	var welcomed sync.WaitGroup
	welcomed.Add(1)
	l, err := s.eng.Listen(dataset, p, vellum.ListenOptions{
		Filter: r.Filter, Params: r.Params, LastEventID: r.LastEventID,
		Reauth:  func(ctx context.Context) (*authz.Principal, error) { return s.auth.Authenticate(ctx, token) },
		Deliver: func(ev *vellum.ListenEvent) bool { welcomed.Wait(); return ls.publishEvent(ss, ev) },
	})
	if err != nil {
		return nil, err
	}
	ss.l = l
	defer welcomed.Done()
	ls.mu.Lock()
	if ls.stopped {
		ls.mu.Unlock()
		l.Close()
		return nil, &vellum.Error{Code: vellum.CodeUnavailable, Description: "the service is stopping"}
	}
	ls.sessions[ss.id] = ss
	ls.mu.Unlock()
	if err := ls.publishControl(ss, ListenControl{Type: ListenWelcome, ListenerID: ss.id, Dataset: dataset, LastEventID: r.LastEventID}); err != nil {
		ls.drop(ss)
		l.Close()
		return nil, err
	}
	ls.pumps.Add(1)
	go ls.pump(ss)
	return nil, nil
}

func (ls *listenService) drop(ss *listenSession) {
	ls.mu.Lock()
	delete(ls.sessions, ss.id)
	ls.mu.Unlock()
}

func (ls *listenService) publishControl(ss *listenSession, c ListenControl) error {
	b, err := marshal(c)
	if err != nil {
		return err
	}
	return ls.s.nc.Publish(ss.inbox, b)
}

// publishEvent publishes one event to the listener's inbox. It is the
// listener's Deliver: the fan-out calls it, so it never waits for the
// client (NATS buffers the message; a client that does not keep up is a
// slow consumer of its NATS server). It returns false when the message
// cannot be published, which ends the listener.
func (ls *listenService) publishEvent(ss *listenSession, ev *vellum.ListenEvent) bool {
	b, err := ev.EncodeJSON(ss.incR, ss.incP)
	if max := ls.s.nc.MaxPayload(); err == nil && int64(len(b)) > max {
		big := &vellum.ListenEvent{Type: vellum.ListenError, EventID: ev.EventID, DocumentID: ev.DocumentID,
			TransactionID: ev.TransactionID, Timestamp: ev.Timestamp,
			Err: &vellum.Error{Code: CodeEventTooLarge, Description: fmt.Sprintf("the event is %d bytes, more than the %d the NATS server carries; get the document instead", len(b), max), ID: ev.DocumentID}}
		b, err = big.EncodeJSON(false, false)
	}
	if err != nil {
		ls.s.log.Error("listener: cannot encode an event", "dataset", ss.dataset, "event", ev.EventID, "error", err)
		return true // skip it: the listener goes on
	}
	if err := ls.s.nc.Publish(ss.inbox, b); err != nil {
		ls.s.log.Warn("listener: cannot publish", "dataset", ss.dataset, "listener", ss.id, "error", err)
		return false
	}
	return true
}

// pump watches a listener until it ends: it sends heartbeats, frees the
// listener when its client is gone, and says why it ended (its events are
// published by publishEvent).
func (ls *listenService) pump(ss *listenSession) {
	defer ls.pumps.Done()
	defer ls.drop(ss)
	hb := time.NewTicker(listenHeartbeat)
	defer hb.Stop()
	for {
		select {
		case ev, ok := <-ss.l.Events():
			if !ok {
				e := ss.l.Err()
				if ss.reconnect.Load() {
					if err := ls.publishControl(ss, ListenControl{Type: ListenReconnect, LastEventID: ss.l.LastEventID()}); err != nil {
						ls.s.log.Warn("listener: cannot send reconnect", "dataset", ss.dataset, "listener", ss.id, "error", err)
					}
					return
				}
				if e != nil && e.Code == vellum.CodeCanceled {
					return // closed here: the client left
				}
				c := ListenControl{Type: ListenDisconnect, LastEventID: ss.l.LastEventID(), Error: e}
				if e != nil {
					c.Reason = e.Code
				}
				if err := ls.publishControl(ss, c); err != nil {
					ls.s.log.Warn("listener: cannot send disconnect", "dataset", ss.dataset, "listener", ss.id, "error", err)
				}
				return
			}
			if !ls.publishEvent(ss, ev) {
				ss.l.Close()
			}
		case <-hb.C:
			err := ls.s.nc.PublishMsg(&nats.Msg{Subject: ss.inbox, Reply: ls.hbBase + "." + ss.id})
			if err != nil {
				ls.s.log.Warn("listener: cannot send a heartbeat", "dataset", ss.dataset, "listener", ss.id, "error", err)
			}
		case <-ss.gone:
			ls.s.log.Debug("listener gone", "dataset", ss.dataset, "listener", ss.id)
			ss.l.Close()
			for range ss.l.Events() {
			}
			return
		}
	}
}

// ListenStream is a client's listener: the messages the daemon sends to
// its inbox.
type ListenStream struct {
	sub     *nats.Subscription
	Welcome ListenControl
}

// ErrListenerLost is returned by ListenStream.Next when no message, not
// even a heartbeat, came for the liveness period.
var ErrListenerLost = errors.New("natsapi: no message from the listener for a while: it is lost (listen again with the last event id)")

// Listen starts a listener on dataset and waits for its welcome. A
// rejected request returns the *vellum.Error the daemon sent.
func (c *Client) Listen(ctx context.Context, dataset string, r ListenRequest) (*ListenStream, error) {
	subject, err := ListenSubject(dataset)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	st := &ListenStream{sub: sub}
	msg := nats.NewMsg(subject)
	msg.Reply = inbox
	msg.Data = body
	if c.token != "" {
		msg.Header.Set(AuthorizationHeader, "Bearer "+c.token)
	}
	if err := c.nc.PublishMsg(msg); err != nil {
		st.Close()
		return nil, fmt.Errorf("request on %s: %w", subject, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("request on %s: %w", subject, err)
		}
		if m.Header.Get("Status") == "503" {
			st.Close()
			return nil, fmt.Errorf("request on %s: %w", subject, nats.ErrNoResponders)
		}
		if m.Header.Get(micro.ErrorCodeHeader) != "" {
			st.Close()
			return nil, decodeError(m)
		}
		if len(m.Data) == 0 {
			continue
		}
		if err := json.Unmarshal(m.Data, &st.Welcome); err != nil || st.Welcome.Type != ListenWelcome {
			st.Close()
			return nil, fmt.Errorf("natsapi: the listener's first message is not a welcome: %s", m.Data)
		}
		return st, nil
	}
}

// Next returns the next event (mutation, error, disconnect or reconnect)
// as the daemon sent it, skipping heartbeats. It returns ErrListenerLost
// after liveness (0: ListenLiveness) without any message, and
// nats.ErrSlowConsumer if the client fell so far behind that messages were
// dropped (listen again with the last event id).
func (st *ListenStream) Next(ctx context.Context, liveness time.Duration) (json.RawMessage, error) {
	if liveness <= 0 {
		liveness = ListenLiveness
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, liveness)
		m, err := st.sub.NextMsgWithContext(wctx)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			return nil, ErrListenerLost
		default:
			return nil, err
		}
		if len(m.Data) == 0 {
			continue
		}
		return m.Data, nil
	}
}

// Close stops receiving; the daemon notices at its next heartbeat.
func (st *ListenStream) Close() { _ = st.sub.Unsubscribe() }
