package natsapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/eventlog"
)

// The JetStream event stream: every durable transaction of a dataset is
// published, in log order, to the stream [StreamName](dataset) on the
// subject [EventSubject](dataset), for trusted consumers (replicas,
// auditors). See docs/jetstream.md.
const (
	// EventSubjectPrefix is the root of the event subjects:
	// vellum.v1.events.<dataset>. Service clients may never publish there
	// (see ClientPermissions).
	EventSubjectPrefix = Prefix + ".events."
	// StreamPrefix starts every event stream's name: vellum_<dataset>.
	StreamPrefix = "vellum_"

	// SeqHeader carries an event's sequence number in the dataset's log
	// (decimal). The publisher reads it back from the stream's last message
	// to know where to continue.
	SeqHeader = "Vellum-Seq"
	// DatasetHeader names the event's dataset.
	DatasetHeader = "Vellum-Dataset"
	// HashHeader carries the event's hash in the dataset's hash chain (hex).
	HashHeader = "Vellum-Hash"
)

// EventSubject returns the subject of dataset's events, or an
// invalidDatasetName error.
func EventSubject(dataset string) (string, error) {
	if err := ValidateDatasetName(dataset); err != nil {
		return "", err
	}
	return EventSubjectPrefix + dataset, nil
}

// StreamName returns the name of dataset's event stream, or an
// invalidDatasetName error. A valid dataset name is a valid stream name
// (no '.', '*', '>', space or path separator).
func StreamName(dataset string) (string, error) {
	if err := ValidateDatasetName(dataset); err != nil {
		return "", err
	}
	return StreamPrefix + dataset, nil
}

// StreamEvent is the body of a message of the event stream: one committed
// transaction in the shape of Sanity's transaction log (id, timestamp,
// author, documentIDs, mutations, effects), with, per effect, the resulting
// document and the grant that allowed it, and the event's place in the
// dataset's hash chain.
type StreamEvent struct {
	ID          string          `json:"id"`
	Seq         uint64          `json:"seq"`
	Timestamp   string          `json:"timestamp"` // RFC 3339, UTC, nanoseconds
	Author      string          `json:"author"`    // the identity that caused it
	DocumentIDs []string        `json:"documentIDs"`
	Mutations   json.RawMessage `json:"mutations"` // as submitted
	// MutationsOmitted says that Mutations was left out (null) because the
	// event would not fit in one NATS message even without its documents.
	MutationsOmitted bool           `json:"mutationsOmitted,omitempty"`
	Effects          []StreamEffect `json:"effects"`
	PreviousHash     string         `json:"previousHash"` // hex; zeros for the first event
	Hash             string         `json:"hash"`         // hex
}

// StreamEffect is what a transaction did to one document.
type StreamEffect struct {
	ID          string `json:"id"`
	Operation   string `json:"operation"` // create, update or delete
	PreviousRev string `json:"previousRev,omitempty"`
	ResultRev   string `json:"resultRev,omitempty"`
	// Document is the document after the transaction; null for a delete,
	// and left out (DocumentOmitted) when the whole event would not fit in
	// one NATS message.
	Document        json.RawMessage `json:"document"`
	DocumentOmitted bool            `json:"documentOmitted,omitempty"`
	Grant           StreamGrant     `json:"grant"`
}

// StreamGrant names the grant that allowed an effect: the group document
// and the grant's index in it.
type StreamGrant struct {
	Group string `json:"group"`
	Index int    `json:"index"`
}

// NewStreamEvent builds the stream body of a commit.
func NewStreamEvent(c *vellum.Commit) *StreamEvent {
	ev := c.Event
	se := &StreamEvent{
		ID:           ev.TxID,
		Seq:          ev.Seq,
		Timestamp:    ev.Time.UTC().Format(time.RFC3339Nano),
		Author:       ev.Identity,
		DocumentIDs:  make([]string, len(ev.Effects)),
		Mutations:    ev.Mutations,
		Effects:      make([]StreamEffect, len(ev.Effects)),
		PreviousHash: hex.EncodeToString(ev.PrevHash[:]),
		Hash:         hex.EncodeToString(ev.Hash[:]),
	}
	if len(se.Mutations) == 0 {
		se.Mutations = json.RawMessage("[]")
	}
	for i := range ev.Effects {
		ef := &ev.Effects[i]
		se.DocumentIDs[i] = ef.DocID
		out := StreamEffect{
			ID:          ef.DocID,
			Operation:   ef.Operation,
			PreviousRev: ef.PrevRev,
			ResultRev:   ef.NewRev,
			Document:    json.RawMessage("null"),
			Grant:       StreamGrant{Group: ef.Grant.Group, Index: ef.Grant.Index},
		}
		if ef.Operation != eventlog.OpDelete && i < len(c.Docs) {
			d := c.Docs[i]
			switch {
			case d.AfterJSON != nil:
				out.Document = d.AfterJSON
			case d.After != nil:
				if b, err := json.Marshal(d.After); err == nil {
					out.Document = b
				}
			}
		}
		se.Effects[i] = out
	}
	return se
}

// streamMessage encodes commit c of dataset as a stream message that fits in
// maxPayload bytes (documents are left out when it would not).
func streamMessage(dataset, subject string, c *vellum.Commit, maxPayload int64) (*nats.Msg, error) {
	se := NewStreamEvent(c)
	body, err := marshal(se)
	if err != nil {
		return nil, err
	}
	if maxPayload > 0 && int64(len(body))+1024 > maxPayload {
		for i := range se.Effects {
			if string(se.Effects[i].Document) != "null" {
				se.Effects[i].Document = json.RawMessage("null")
				se.Effects[i].DocumentOmitted = true
			}
		}
		if body, err = marshal(se); err != nil {
			return nil, err
		}
	}
	if maxPayload > 0 && int64(len(body))+1024 > maxPayload {
		se.Mutations = json.RawMessage("null")
		se.MutationsOmitted = true
		if body, err = marshal(se); err != nil {
			return nil, err
		}
	}
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, c.Event.TxID)
	m.Header.Set(SeqHeader, strconv.FormatUint(c.Event.Seq, 10))
	m.Header.Set(DatasetHeader, dataset)
	m.Header.Set(HashHeader, se.Hash)
	return m, nil
}

// Defaults of PublisherOptions.
const (
	DefaultPublishWindow = 256
	DefaultRetryInterval = time.Second
	DefaultDatasetPoll   = 250 * time.Millisecond
	publishAckTimeout    = 10 * time.Second
)

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	// Logger gets the publisher's warnings (NATS or JetStream unavailable,
	// catching up); nil means slog.Default().
	Logger *slog.Logger
	// Replicas is the event streams' replica count when the publisher
	// creates them (0 means 1; a JetStream cluster takes 3).
	Replicas int
	// Window bounds the messages awaiting JetStream's acknowledgement
	// (0 means DefaultPublishWindow).
	Window int
	// RetryInterval is the wait before retrying after a failure (0 means
	// DefaultRetryInterval).
	RetryInterval time.Duration
	// DatasetPoll is how often new datasets are looked for (0 means
	// DefaultDatasetPoll).
	DatasetPoll time.Duration
}

// A Publisher publishes every durable transaction of every dataset of an
// engine to the dataset's JetStream stream, after the engine's sync and in
// log order, with the transaction id as Nats-Msg-Id.
//
// It keeps no state of its own: on start, and after any failure (NATS gone,
// JetStream unavailable, an acknowledgement lost), it reads the sequence
// number of the stream's last message (SeqHeader) and continues from the
// next event of the log. Every publish also expects the stream's last
// sequence to be the one the publisher saw (Nats-Expected-Last-Sequence),
// so a message that failed can never be followed by a later one: the stream
// holds the log without a gap, and (with Nats-Msg-Id) without a duplicate.
// Writes never wait for it.
type Publisher struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	eng  *vellum.Engine
	opts PublisherOptions
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	datasets map[string]*streamState
}

// streamState is what the publisher knows of one dataset's stream.
type streamState struct {
	published atomic.Uint64 // the log sequence number of the stream's last message
}

// PublishEvents starts publishing eng's commits on nc, which should be a
// connection of its own (it subscribes for JetStream's acknowledgements).
// Close stops it.
func PublishEvents(nc *nats.Conn, eng *vellum.Engine, opts PublisherOptions) (*Publisher, error) {
	if nc == nil || eng == nil {
		return nil, errors.New("natsapi: PublishEvents needs a connection and an engine")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Window <= 0 {
		opts.Window = DefaultPublishWindow
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	if opts.DatasetPoll <= 0 {
		opts.DatasetPoll = DefaultDatasetPoll
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(opts.Window),
		jetstream.WithPublishAsyncTimeout(publishAckTimeout))
	if err != nil {
		return nil, fmt.Errorf("natsapi: JetStream context: %w", err)
	}
	p := &Publisher{
		nc: nc, js: js, eng: eng, opts: opts,
		log:      opts.Logger.With("component", "jetstream"),
		datasets: map[string]*streamState{},
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Go(p.watchDatasets)
	return p, nil
}

// Close stops publishing and waits for the publisher's goroutines. Events
// not yet in the stream are published by the next Publisher, from the log.
func (p *Publisher) Close() {
	p.cancel()
	p.wg.Wait()
}

// Flush waits until the stream of every dataset holds the dataset's whole
// log as it is when Flush is called, or until ctx is done (then it returns
// ctx's error). vellumd calls it at shutdown, so that consumers see every
// transaction without waiting for the next start.
func (p *Publisher) Flush(ctx context.Context) error {
	list, err := p.eng.Datasets(ctx, vellum.SystemPrincipal)
	if err != nil {
		return err
	}
	want := make(map[string]uint64, len(list))
	for _, d := range list {
		if want[d.Name], err = p.eng.Head(d.Name); err != nil {
			return err
		}
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		behind := 0
		for name, head := range want {
			if p.Published(name) < head {
				behind++
			}
		}
		if behind == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsapi: %d event streams are behind their logs: %w", behind, ctx.Err())
		case <-tick.C:
		}
	}
}

// Published returns the log sequence number of the last event of dataset
// that the publisher knows to be in the stream (0 if none or unknown).
func (p *Publisher) Published(dataset string) uint64 {
	p.mu.Lock()
	st := p.datasets[dataset]
	p.mu.Unlock()
	if st == nil {
		return 0
	}
	return st.published.Load()
}

// watchDatasets starts a publishing loop for each dataset, present and
// future.
func (p *Publisher) watchDatasets() {
	t := time.NewTicker(p.opts.DatasetPoll)
	defer t.Stop()
	for {
		list, err := p.eng.Datasets(p.ctx, vellum.SystemPrincipal)
		if err != nil && p.ctx.Err() == nil {
			p.log.Error("listing the datasets to publish", "error", err)
		}
		for _, d := range list {
			p.mu.Lock()
			if p.datasets[d.Name] == nil {
				st := &streamState{}
				p.datasets[d.Name] = st
				name := d.Name
				p.wg.Go(func() { p.runDataset(name, st) })
			}
			p.mu.Unlock()
		}
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runDataset publishes dataset's events until the publisher closes,
// starting over from the stream's last message after each failure.
func (p *Publisher) runDataset(dataset string, st *streamState) {
	failing := false
	for {
		err := p.publishDataset(dataset, st, &failing)
		if p.ctx.Err() != nil {
			return
		}
		if !failing {
			p.log.Warn("event stream interrupted; events will be published from the log when it is back", "dataset", dataset, "error", err)
			failing = true
		} else {
			p.log.Debug("event stream still unavailable", "dataset", dataset, "error", err)
		}
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(p.opts.RetryInterval):
		}
	}
}

// errStreamAhead says that the stream holds events the log does not: it
// belongs to another store (for example a data directory that was replaced).
var errStreamAhead = errors.New("the stream holds events beyond the end of the log")

// publishDataset makes sure the stream exists, finds where it ends and
// publishes from there until an error.
func (p *Publisher) publishDataset(dataset string, st *streamState, failing *bool) error {
	ctx := p.ctx
	stream, err := p.ensureStream(ctx, dataset)
	if err != nil {
		return err
	}
	streamLast, logLast, err := lastPublished(ctx, stream)
	if err != nil {
		return err
	}
	head, err := p.eng.Head(dataset)
	if err != nil {
		return err
	}
	if logLast > head {
		return fmt.Errorf("%w: stream %s ends with event %d, the log of dataset %q with event %d",
			errStreamAhead, StreamPrefix+dataset, logLast, dataset, head)
	}
	st.published.Store(logLast)
	if *failing {
		p.log.Info("event stream back; catching up from the log", "dataset", dataset, "stream_last", logLast, "log_head", head)
		*failing = false
	}
	w, err := p.eng.Watch(dataset, logLast, vellum.WatchOptions{})
	if err != nil {
		return err
	}
	defer w.Close()
	subject := EventSubjectPrefix + dataset
	maxPayload := p.nc.MaxPayload()

	type inFlight struct {
		fut jetstream.PubAckFuture
		seq uint64 // log sequence number
	}
	var pending []inFlight
	read := logLast // the log sequence number of the last commit taken from w
	for {
		// Take the next commit: wait for one when nothing is in flight,
		// otherwise only if it is already durable.
		if len(pending) < p.opts.Window {
			var c *vellum.Commit
			if len(pending) == 0 {
				if c, err = w.Next(ctx); err != nil {
					return err
				}
			} else if h, _ := p.eng.Head(dataset); h > read {
				if c, err = w.Next(ctx); err != nil {
					return err
				}
			}
			if c != nil {
				if c.Event.Seq != read+1 {
					return fmt.Errorf("the commit feed of dataset %q gave event %d after %d", dataset, c.Event.Seq, read)
				}
				msg, err := streamMessage(dataset, subject, c, maxPayload)
				if err != nil {
					return err
				}
				expect := streamLast + uint64(len(pending))
				fut, err := p.js.PublishMsgAsync(msg, jetstream.WithExpectLastSequence(expect))
				if err != nil {
					return fmt.Errorf("publishing event %d: %w", c.Event.Seq, err)
				}
				read = c.Event.Seq
				pending = append(pending, inFlight{fut, read})
				continue
			}
		}
		// Wait for the oldest acknowledgement.
		f := pending[0]
		select {
		case ack := <-f.fut.Ok():
			if ack.Duplicate || ack.Sequence != streamLast+1 {
				return fmt.Errorf("event %d: stream sequence %d (duplicate %v), expected %d; re-reading the stream", f.seq, ack.Sequence, ack.Duplicate, streamLast+1)
			}
			streamLast = ack.Sequence
			st.published.Store(f.seq)
			pending = pending[1:]
		case err := <-f.fut.Err():
			return fmt.Errorf("event %d: %w", f.seq, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ensureStream returns dataset's stream, creating it if it does not exist.
func (p *Publisher) ensureStream(ctx context.Context, dataset string) (jetstream.Stream, error) {
	name := StreamPrefix + dataset
	s, err := p.js.Stream(ctx, name)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("looking up stream %s: %w", name, err)
	}
	s, err = p.js.CreateStream(ctx, StreamConfig(dataset, p.opts.Replicas))
	if err != nil {
		return nil, fmt.Errorf("creating stream %s: %w", name, err)
	}
	p.log.Info("created the event stream", "dataset", dataset, "stream", name)
	return s, nil
}

// StreamConfig is the configuration of dataset's event stream as the
// publisher creates it: file storage, everything kept, messages neither
// deleted nor purged, de-duplicated by Nats-Msg-Id.
func StreamConfig(dataset string, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamPrefix + dataset,
		Description: "Vellum: the committed transactions of dataset " + dataset,
		Subjects:    []string{EventSubjectPrefix + dataset},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    max(replicas, 1),
		// The server keeps every id of the window in memory (two minutes
		// at 17,000 transactions/s: 700 MB more RSS than 20 s); the
		// expected-last-sequence check already refuses duplicates, and
		// the window covers retries within the acknowledgement timeout.
		Duplicates:  2 * publishAckTimeout,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
	}
}

// lastPublished returns the stream's last sequence number and the log
// sequence number its last message carries (0, 0 for an empty stream).
func lastPublished(ctx context.Context, s jetstream.Stream) (streamLast, logLast uint64, err error) {
	info, err := s.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("reading the stream's state: %w", err)
	}
	if info.State.Msgs == 0 {
		return info.State.LastSeq, 0, nil
	}
	m, err := s.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		return 0, 0, fmt.Errorf("reading the stream's last message %d: %w", info.State.LastSeq, err)
	}
	v := m.Header.Get(SeqHeader)
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("the stream's last message %d has no valid %s header (%q): it was not published by vellumd", info.State.LastSeq, SeqHeader, v)
	}
	return info.State.LastSeq, n, nil
}
