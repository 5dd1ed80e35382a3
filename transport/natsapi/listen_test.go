package natsapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/transport/natsapi"
)

// listenAuth accepts the test's administrator token, the engine's robot
// tokens, and no credential (everyone).
func listenAuth(e *vellum.Engine) natsapi.Authenticator {
	return natsapi.AdminToken(testToken, &authz.Authenticator{Tokens: e})
}

// event is the part of a listener message the tests compare.
type event struct {
	Type, DocumentID, Transition, EventID, LastEventID, Reason string
	Result                                                     map[string]any
	Error                                                      *vellum.Error
}

func nextEvent(t *testing.T, st *natsapi.ListenStream) (event, json.RawMessage) {
	t.Helper()
	raw, err := st.Next(ctxT(t), 10*time.Second)
	if err != nil {
		t.Fatalf("next listener message: %v", err)
	}
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("listener message %s: %v", raw, err)
	}
	return ev, raw
}

func noEvent(t *testing.T, st *natsapi.ListenStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if raw, err := st.Next(ctx, time.Minute); err == nil {
		t.Fatalf("unexpected listener message %s", raw)
	}
}

func mustListen(t *testing.T, c *natsapi.Client, dataset string, r natsapi.ListenRequest) *natsapi.ListenStream {
	t.Helper()
	st, err := c.Listen(ctxT(t), dataset, r)
	if err != nil {
		t.Fatalf("listen %+v: %v", r, err)
	}
	t.Cleanup(st.Close)
	if st.Welcome.ListenerID == "" || st.Welcome.Dataset != dataset {
		t.Fatalf("welcome %+v", st.Welcome)
	}
	return st
}

func TestListen(t *testing.T) {
	f := newFixtureAuth(t, listenAuth)
	f.mustCreateDataset(t, "blog")
	admin := mustListen(t, f.client, "blog", natsapi.ListenRequest{Filter: `_type == $t`, Params: map[string]any{"t": "post"}, IncludeResult: true, IncludePrevious: true})
	anon := mustListen(t, natsapi.NewClient(f.nc, ""), "blog", natsapi.ListenRequest{IncludeResult: true})

	res := f.mustMutate(t, "blog", `{"mutations":[{"create":{"_id":"p1","_type":"post","title":"Hello"}},{"create":{"_id":"drafts.p2","_type":"post","title":"SECRET draft"}}]}`)
	tx := res["transactionId"].(string)
	for _, want := range []string{"p1", "drafts.p2"} {
		ev, raw := nextEvent(t, admin)
		if ev.Type != "mutation" || ev.DocumentID != want || ev.Transition != "appear" || ev.EventID != tx+"#"+want || ev.Result["_id"] != want {
			t.Fatalf("admin event %s, want %s appearing", raw, want)
		}
		var all map[string]any
		json.Unmarshal(raw, &all)
		for _, field := range []string{"transactionId", "identity", "mutations", "resultRev", "timestamp", "transactionTotalEvents", "transactionCurrentEvent", "previous", "result"} {
			if _, ok := all[field]; !ok {
				t.Errorf("admin event has no %s: %s", field, raw)
			}
		}
	}
	// everyone reads only the root path of a public dataset: not the draft.
	ev, raw := nextEvent(t, anon)
	if ev.DocumentID != "p1" || ev.Transition != "appear" || strings.Contains(string(raw), "SECRET") {
		t.Fatalf("anonymous event %s", raw)
	}
	noEvent(t, anon)

	f.mustMutate(t, "blog", `{"mutations":[{"patch":{"id":"p1","set":{"_type":"page"}}}]}`)
	if ev, raw := nextEvent(t, admin); ev.Transition != "disappear" || ev.DocumentID != "p1" || ev.Result != nil {
		t.Fatalf("admin after p1 stopped matching: %s", raw)
	}
	if ev, raw := nextEvent(t, anon); ev.Transition != "update" || ev.DocumentID != "p1" {
		t.Fatalf("anonymous after p1 changed type: %s", raw)
	}
}

// A malformed listen request gets a typed error, never a crash, and the
// other listeners go on.
func TestListenRejected(t *testing.T) {
	f := newFixture(t)
	f.mustCreateDataset(t, "blog")
	good := mustListen(t, f.client, "blog", natsapi.ListenRequest{})
	for _, c := range []struct {
		name    string
		dataset string
		body    string
		token   string
		code    string
	}{
		{"body not JSON", "blog", `{"filter":`, testToken, "malformedRequest"},
		{"unknown field", "blog", `{"filtre":"_type == 'a'"}`, testToken, "malformedRequest"},
		{"filter syntax", "blog", `{"filter":"_type =="}`, testToken, "queryParseError"},
		{"filter with a subquery", "blog", `{"filter":"count(*[_type == 'a']) > 0"}`, testToken, "invalidFilter"},
		{"missing parameter", "blog", `{"filter":"_type == $t"}`, testToken, "queryParseError"},
		{"unknown last event", "blog", `{"lastEventId":"nope#p1"}`, testToken, "eventNotFound"},
		{"unknown dataset", "nope", `{}`, testToken, "unknownDataset"},
		{"bad token", "blog", `{}`, "wrong", "unauthorized"},
	} {
		subject, _ := natsapi.ListenSubject(c.dataset)
		inbox := f.nc.NewInbox()
		sub, err := f.nc.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg(subject)
		msg.Reply = inbox
		msg.Data = []byte(c.body)
		msg.Header.Set(natsapi.AuthorizationHeader, "Bearer "+c.token)
		if err := f.nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var body struct{ Error *vellum.Error }
		if err := json.Unmarshal(m.Data, &body); err != nil || body.Error == nil || body.Error.Code != c.code || m.Header.Get(natsapi.ErrorCodeHeader) != c.code {
			t.Errorf("%s: reply %s (%v), want error %s", c.name, m.Data, m.Header, c.code)
		}
		if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
			t.Errorf("%s: a second message %s after the error", c.name, m.Data)
		}
		sub.Unsubscribe()
	}
	// The client's Listen returns the typed error.
	_, err := f.client.Listen(ctxT(t), "blog", natsapi.ListenRequest{Filter: "_type =="})
	var ve *vellum.Error
	if !errors.As(err, &ve) || ve.Code != "queryParseError" {
		t.Errorf("Client.Listen with a bad filter: %v", err)
	}
	f.mustMutate(t, "blog", `{"mutations":[{"create":{"_id":"after","_type":"post"}}]}`)
	if ev, raw := nextEvent(t, good); ev.DocumentID != "after" {
		t.Fatalf("the good listener after the rejected ones: %s", raw)
	}
}

// A client that goes away without a word is noticed at the next heartbeat
// and its listener freed.
func TestListenAbandoned(t *testing.T) {
	defer natsapi.SetListenHeartbeat(50 * time.Millisecond)()
	f := newFixture(t)
	f.mustCreateDataset(t, "blog")
	kept := mustListen(t, f.client, "blog", natsapi.ListenRequest{})
	for range 3 {
		st := mustListen(t, f.client, "blog", natsapi.ListenRequest{})
		st.Close()
	}
	other, err := nats.Connect(f.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	mustListen(t, natsapi.NewClient(other, testToken), "blog", natsapi.ListenRequest{})
	other.Close() // the whole connection goes
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _ := f.eng.ListenStats("blog")
		if s.Listeners == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d listeners attached, want only the kept one", s.Listeners)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The kept one is alive: heartbeats do not end it, and it gets events.
	time.Sleep(200 * time.Millisecond)
	f.mustMutate(t, "blog", `{"mutations":[{"create":{"_id":"x","_type":"post"}}]}`)
	if ev, raw := nextEvent(t, kept); ev.DocumentID != "x" {
		t.Fatalf("kept listener: %s", raw)
	}
}

// The service stops (the daemon restarts): listeners get reconnect with
// their last event id, and listening again from it gives what they missed,
// once, in order, then live events.
func TestListenServiceRestart(t *testing.T) {
	f := newFixture(t)
	f.mustCreateDataset(t, "blog")
	st := mustListen(t, f.client, "blog", natsapi.ListenRequest{})
	f.mustMutate(t, "blog", `{"mutations":[{"create":{"_id":"a","_type":"post"}}]}`)
	first, _ := nextEvent(t, st)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rc, raw := nextEvent(t, st)
	if rc.Type != "reconnect" || rc.LastEventID != first.EventID {
		t.Fatalf("at the service's stop: %s, want reconnect after %s", raw, first.EventID)
	}
	// Writes while no service runs.
	var missed []string
	for i := range 3 {
		res, err := f.eng.Transact(ctx, "blog", vellum.SystemPrincipal, []byte(fmt.Sprintf(`{"mutations":[{"create":{"_id":"m%d","_type":"post"}}]}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		missed = append(missed, res.TransactionID+fmt.Sprintf("#m%d", i))
	}
	svcConn, err := nats.Connect(f.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer svcConn.Close()
	srv, err := natsapi.Serve(svcConn, f.eng, natsapi.Options{Auth: listenAuth(f.eng)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())

	again := mustListen(t, f.client, "blog", natsapi.ListenRequest{LastEventID: rc.LastEventID})
	for _, want := range missed {
		if ev, raw := nextEvent(t, again); ev.EventID != want {
			t.Fatalf("resumed: %s, want %s", raw, want)
		}
	}
	res := f.mustMutate(t, "blog", `{"mutations":[{"create":{"_id":"live","_type":"post"}}]}`)
	if ev, raw := nextEvent(t, again); ev.EventID != res["transactionId"].(string)+"#live" {
		t.Fatalf("live after resuming: %s", raw)
	}
	noEvent(t, again)
}

// A robot token's listener sees what the token may read; once the token
// is revoked, what it saw disappears and the listener is disconnected.
func TestListenTokenRevoked(t *testing.T) {
	f := newFixtureAuth(t, listenAuth)
	if _, err := f.client.CreateDataset(ctxT(t), "blog", "private"); err != nil {
		t.Fatal(err)
	}
	f.mustMutate(t, "blog", `{"mutations":[{"create":{"_id":"p","_type":"post"}}]}`)
	tok, err := f.client.CreateToken(ctxT(t), "reader", "viewer", "blog")
	if err != nil {
		t.Fatal(err)
	}
	st := mustListen(t, natsapi.NewClient(f.nc, tok.Secret), "blog", natsapi.ListenRequest{})
	anon := mustListen(t, natsapi.NewClient(f.nc, ""), "blog", natsapi.ListenRequest{})
	f.mustMutate(t, "blog", `{"mutations":[{"patch":{"id":"p","set":{"n":1}}}]}`)
	if ev, raw := nextEvent(t, st); ev.Transition != "update" || ev.DocumentID != "p" {
		t.Fatalf("viewer: %s", raw)
	}
	if _, err := f.client.RevokeToken(ctxT(t), "reader"); err != nil {
		t.Fatal(err)
	}
	if ev, raw := nextEvent(t, st); ev.Transition != "disappear" || ev.DocumentID != "p" {
		t.Fatalf("viewer after revocation: %s", raw)
	}
	if ev, raw := nextEvent(t, st); ev.Type != "disconnect" || ev.Reason != "unauthorized" {
		t.Fatalf("viewer after revocation: %s, want disconnect", raw)
	}
	f.mustMutate(t, "blog", `{"mutations":[{"patch":{"id":"p","set":{"n":2}}}]}`)
	noEvent(t, st)
	noEvent(t, anon) // everyone never saw anything of the private dataset
}
