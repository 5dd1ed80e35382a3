package natsapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
)

const testToken = "test-admin-token-0123456789"

// maxDocSize is the engine's document size limit in these tests, small so
// that documentTooLarge is cheap to provoke.
const maxDocSize = 4096

// fixture is a real embedded NATS server on a random loopback port, the real
// engine on a temporary directory, and the service between them.
type fixture struct {
	ns     *server.Server
	eng    *vellum.Engine
	srv    *natsapi.Server
	nc     *nats.Conn // a client connection, separate from the service's
	client *natsapi.Client
}

func startNATS(t testing.TB) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host:   "127.0.0.1",
		Port:   server.RANDOM_PORT,
		NoLog:  true,
		NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureAuth(t, func(*vellum.Engine) natsapi.Authenticator { return natsapi.AdminToken(testToken, nil) })
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (f *fixture) mustCreateDataset(t testing.TB, name string) {
	t.Helper()
	if _, err := f.client.CreateDataset(ctxT(t), name, ""); err != nil {
		t.Fatalf("creating dataset %s: %v", name, err)
	}
}

func (f *fixture) mustMutate(t *testing.T, dataset, tx string) map[string]any {
	t.Helper()
	res, err := f.client.Mutate(ctxT(t), dataset, []byte(tx))
	if err != nil {
		t.Fatalf("mutate %s: %v", tx, err)
	}
	var out map[string]any
	if err := json.Unmarshal(res, &out); err != nil {
		t.Fatalf("result %s: %v", res, err)
	}
	return out
}

// docs decodes raw documents and keeps the fields the tests compare.
func docs(t *testing.T, raw []json.RawMessage) []string {
	t.Helper()
	out := []string{}
	for _, r := range raw {
		var d map[string]any
		if err := json.Unmarshal(r, &d); err != nil {
			t.Fatalf("document %s: %v", r, err)
		}
		s := fmt.Sprintf("%v:%v", d["_id"], d["title"])
		if o, ok := d["_originalId"]; ok {
			s += fmt.Sprintf(" (from %v)", o)
		}
		out = append(out, s)
	}
	return out
}

func TestDatasets(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)

	list, err := f.client.Datasets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Fatalf("a new engine lists datasets %v", list)
	}
	for _, c := range []struct{ name, acl, want string }{
		{"blog", "", "public"},
		{"secrets", "private", "private"},
		{"shop-2_x", "public", "public"},
	} {
		info, err := f.client.CreateDataset(ctx, c.name, c.acl)
		if err != nil {
			t.Fatalf("create %s: %v", c.name, err)
		}
		if info.Name != c.name || info.ACL != c.want || info.CreatedAt.IsZero() {
			t.Errorf("create %s %q = %+v, want name %s, acl %s and a creation time", c.name, c.acl, info, c.name, c.want)
		}
	}
	list, err = f.client.Datasets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range list {
		names = append(names, d.Name+"/"+d.ACL)
	}
	if got, want := strings.Join(names, " "), "blog/public secrets/private shop-2_x/public"; got != want {
		t.Errorf("datasets = %s, want %s", got, want)
	}
}

func TestMutateAndGet(t *testing.T) {
	f := newFixture(t)
	f.mustCreateDataset(t, "blog")

	res := f.mustMutate(t, "blog", `{"mutations":[
		{"create":{"_id":"post-1","_type":"post","title":"Hello <world> & co"}},
		{"create":{"_id":"drafts.post-1","_type":"post","title":"Hello, draft"}},
		{"create":{"_id":"post-2","_type":"post","title":"Second"}}
	]}`)
	txid, _ := res["transactionId"].(string)
	if txid == "" {
		t.Fatalf("result has no transactionId: %v", res)
	}
	results, _ := res["results"].([]any)
	if len(results) != 3 {
		t.Fatalf("results = %v, want 3", results)
	}
	for i, want := range []string{"post-1", "drafts.post-1", "post-2"} {
		r, _ := results[i].(map[string]any)
		if r["id"] != want || r["operation"] != "create" {
			t.Errorf("result %d = %v, want create of %s", i, r, want)
		}
	}

	// A patch with the revision just written succeeds and sets _rev anew.
	res2 := f.mustMutate(t, "blog", `{"mutations":[{"patch":{"id":"post-2","ifRevisionID":"`+txid+`","set":{"title":"Second, edited"}}}],"returnDocuments":true}`)
	r0 := res2["results"].([]any)[0].(map[string]any)
	if r0["operation"] != "update" {
		t.Errorf("patch result = %v, want update", r0)
	}
	if doc, _ := r0["document"].(map[string]any); doc["title"] != "Second, edited" || doc["_rev"] != res2["transactionId"] {
		t.Errorf("returned document = %v, want the new title and _rev %v", doc, res2["transactionId"])
	}

	ids := []string{"post-1", "drafts.post-1", "post-2", "missing"}
	for _, c := range []struct {
		perspective string
		ids         []string
		want        []string
	}{
		{"", ids, []string{"post-1:Hello <world> & co", "drafts.post-1:Hello, draft", "post-2:Second, edited"}},
		{"raw", ids, []string{"post-1:Hello <world> & co", "drafts.post-1:Hello, draft", "post-2:Second, edited"}},
		{"published", ids, []string{"post-1:Hello <world> & co", "post-2:Second, edited"}},
		{"drafts", []string{"post-1", "post-2", "missing"}, []string{"post-1:Hello, draft (from drafts.post-1)", "post-2:Second, edited (from post-2)"}},
		{"raw", []string{"missing"}, []string{}},
	} {
		got, err := f.client.Get(ctxT(t), "blog", c.ids, c.perspective)
		if err != nil {
			t.Errorf("get %v (%q): %v", c.ids, c.perspective, err)
			continue
		}
		if g, w := strings.Join(docs(t, got), " | "), strings.Join(c.want, " | "); g != w {
			t.Errorf("get %v (%q) =\n  %s\nwant\n  %s", c.ids, c.perspective, g, w)
		}
	}

	// Documents come back byte for byte as the engine has them.
	ids = []string{"post-1", "drafts.post-1"}
	direct, err := f.eng.Get(ctxT(t), "blog", natsapi.AdminPrincipal, ids, "raw")
	if err != nil {
		t.Fatal(err)
	}
	viaNATS, err := f.client.Get(ctxT(t), "blog", ids, "raw")
	if err != nil {
		t.Fatal(err)
	}
	if len(direct) != 2 || len(viaNATS) != 2 || string(direct[0]) != string(viaNATS[0]) || string(direct[1]) != string(viaNATS[1]) {
		t.Errorf("documents over NATS\n  %s\ndiffer from the engine's\n  %s", viaNATS, direct)
	}
}

// TestConcurrentMutations sends many transactions at once: the service
// handles them concurrently (so the engine can group their syncs) and every
// one is answered and applied.
func TestConcurrentMutations(t *testing.T) {
	f := newFixture(t)
	f.mustCreateDataset(t, "load")
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			tx := fmt.Sprintf(`{"mutations":[{"create":{"_id":"doc-%d","_type":"t","title":"%d"}}]}`, i, i)
			if _, err := f.client.Mutate(ctxT(t), "load", []byte(tx)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("doc-%d", i)
	}
	got, err := f.client.Get(ctxT(t), "load", ids, "raw")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Errorf("got %d documents back, want %d", len(got), n)
	}
}

// TestErrors sends every kind of bad request as raw NATS messages and checks
// the whole response: micro's error headers (the status from the one table,
// and the description), Vellum-Error-Code, and the typed body.
func TestErrors(t *testing.T) {
	f := newFixture(t)
	f.mustCreateDataset(t, "blog")
	f.mustMutate(t, "blog", `{"mutations":[{"create":{"_id":"post-1","_type":"post","title":"Hello","n":"not a number"}}]}`)
	big := strings.Repeat("x", maxDocSize)

	auth := "Bearer " + testToken
	cases := []struct {
		name    string
		subject string
		auth    string // Authorization header; "-" for none
		body    string
		code    string
		status  int
		index   *int
		id      string
	}{
		{"no token", "vellum.v1.ds.blog.mutate", "-", `{"mutations":[]}`, "unauthorized", 401, nil, ""},
		{"wrong token", "vellum.v1.ds.blog.get", "Bearer nope", `{"ids":["post-1"]}`, "unauthorized", 401, nil, ""},
		{"not a bearer header", "vellum.v1.datasets.list", "Basic " + testToken, ``, "unauthorized", 401, nil, ""},
		{"empty bearer", "vellum.v1.datasets.create", "Bearer ", `{"name":"x"}`, "unauthorized", 401, nil, ""},

		{"malformed JSON", "vellum.v1.ds.blog.mutate", auth, `{"mutations":[`, "malformedTransaction", 400, nil, ""},
		{"unknown mutation", "vellum.v1.ds.blog.mutate", auth, `{"mutations":[{"create":{"_id":"a","_type":"t"}},{"explode":{"id":"post-1"}}]}`, "unknownMutation", 400, ip(1), ""},
		{"invalid id", "vellum.v1.ds.blog.mutate", auth, `{"mutations":[{"create":{"_id":"bad id","_type":"t"}}]}`, "invalidDocumentId", 400, ip(0), ""},
		{"patch of a missing document", "vellum.v1.ds.blog.mutate", auth, `{"mutations":[{"patch":{"id":"nope","set":{"a":1}}}]}`, "documentNotFound", 404, ip(0), "nope"},
		{"revision mismatch", "vellum.v1.ds.blog.mutate", auth, `{"mutations":[{"patch":{"id":"post-1","ifRevisionID":"stale","set":{"a":1}}}]}`, "documentRevisionIDDoesNotMatch", 409, ip(0), "post-1"},
		{"create of an existing id", "vellum.v1.ds.blog.mutate", auth, `{"mutations":[{"create":{"_id":"post-1","_type":"post"}}]}`, "documentAlreadyExists", 409, ip(0), "post-1"},
		{"inc on a non-number", "vellum.v1.ds.blog.mutate", auth, `{"mutations":[{"patch":{"id":"post-1","inc":{"n":1}}}]}`, "typeMismatch", 400, ip(0), "post-1"},
		{"document too large", "vellum.v1.ds.blog.mutate", auth, `{"mutations":[{"create":{"_id":"big","_type":"t","x":"` + big + `"}}]}`, "documentTooLarge", 413, ip(0), "big"},
		{"unknown dataset (mutate)", "vellum.v1.ds.nope.mutate", auth, `{"mutations":[]}`, "unknownDataset", 404, nil, ""},
		{"unknown dataset (get)", "vellum.v1.ds.nope.get", auth, `{"ids":["post-1"]}`, "unknownDataset", 404, nil, ""},
		{"invalid dataset token", "vellum.v1.ds.Blog.mutate", auth, `{"mutations":[]}`, "invalidDatasetName", 400, nil, ""},

		{"get without ids", "vellum.v1.ds.blog.get", auth, `{"perspective":"raw"}`, "malformedRequest", 400, nil, ""},
		{"get with an unknown field", "vellum.v1.ds.blog.get", auth, `{"ids":["a"],"perspectiv":"raw"}`, "malformedRequest", 400, nil, ""},
		{"get not JSON", "vellum.v1.ds.blog.get", auth, `post-1`, "malformedRequest", 400, nil, ""},
		{"get with an invalid id", "vellum.v1.ds.blog.get", auth, `{"ids":["bad id"]}`, "invalidDocumentId", 400, nil, ""},
		{"get with an unknown perspective", "vellum.v1.ds.blog.get", auth, `{"ids":["post-1"],"perspective":"future"}`, "invalidPerspective", 400, nil, ""},

		{"create an existing dataset", "vellum.v1.datasets.create", auth, `{"name":"blog"}`, "datasetExists", 409, nil, ""},
		{"create a badly named dataset", "vellum.v1.datasets.create", auth, `{"name":"Blog!"}`, "invalidDatasetName", 400, nil, ""},
		{"create with a bad acl", "vellum.v1.datasets.create", auth, `{"name":"x","aclMode":"secret"}`, "invalidAclMode", 400, nil, ""},
		{"create not JSON", "vellum.v1.datasets.create", auth, `blog`, "malformedRequest", 400, nil, ""},
		{"list with a body", "vellum.v1.datasets.list", auth, `{"all":true}`, "malformedRequest", 400, nil, ""},

		{"token create not JSON", "vellum.v1.tokens.create", auth, `deploy`, "malformedRequest", 400, nil, ""},
		{"token create with an unknown field", "vellum.v1.tokens.create", auth, `{"name":"a","role":"viewer","scope":"x"}`, "malformedRequest", 400, nil, ""},
		{"token create with a bad role", "vellum.v1.tokens.create", auth, `{"name":"a","role":"owner"}`, "invalidToken", 400, nil, ""},
		{"token list with a body", "vellum.v1.tokens.list", auth, `{"all":true}`, "malformedRequest", 400, nil, ""},
		{"token revoke of nothing", "vellum.v1.tokens.revoke", auth, `{"name":"nope"}`, "invalidToken", 400, nil, ""},
		{"acl without a mode", "vellum.v1.datasets.acl", auth, `{"name":"blog"}`, "invalidAclMode", 400, nil, ""},
		{"acl of a bad name", "vellum.v1.datasets.acl", auth, `{"name":"a.b","aclMode":"public"}`, "invalidDatasetName", 400, nil, ""},
		{"explain in a bad dataset token", "vellum.v1.ds.Blog.explain", auth, `{"as":"a","id":"post-1","action":"read"}`, "invalidDatasetName", 400, nil, ""},
		{"explain without an action", "vellum.v1.ds.blog.explain", auth, `{"as":"a","id":"post-1"}`, "invalidRequest", 400, nil, ""},
		{"explain not JSON", "vellum.v1.ds.blog.explain", auth, `post-1`, "malformedRequest", 400, nil, ""},
		{"token create without a credential", "vellum.v1.tokens.create", "-", `{"name":"a","role":"viewer"}`, "unauthorized", 401, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := nats.NewMsg(c.subject)
			msg.Data = []byte(c.body)
			if c.auth != "-" {
				msg.Header.Set("Authorization", c.auth)
			}
			reply, err := f.nc.RequestMsg(msg, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := reply.Header.Get(micro.ErrorCodeHeader); got != strconv.Itoa(c.status) {
				t.Errorf("%s = %q, want %d (body %.200s)", micro.ErrorCodeHeader, got, c.status, reply.Data)
			}
			if got := reply.Header.Get(natsapi.ErrorCodeHeader); got != c.code {
				t.Errorf("%s = %q, want %s", natsapi.ErrorCodeHeader, got, c.code)
			}
			var body struct{ Error *vellum.Error }
			if err := json.Unmarshal(reply.Data, &body); err != nil || body.Error == nil {
				t.Fatalf("body %.200s is not {\"error\":{...}}: %v", reply.Data, err)
			}
			e := body.Error
			if e.Code != c.code || e.Description == "" {
				t.Errorf("error = %+v, want code %s and a description", e, c.code)
			}
			if got := reply.Header.Get(micro.ErrorHeader); got == "" || strings.ContainsAny(got, "\r\n") {
				t.Errorf("%s = %q, want the description on one line", micro.ErrorHeader, got)
			}
			if natsapi.Status(e.Code) != c.status {
				t.Errorf("Status(%s) = %d, want %d", e.Code, natsapi.Status(e.Code), c.status)
			}
			if (c.index == nil) != (e.Index == nil) || c.index != nil && *c.index != *e.Index {
				t.Errorf("index = %v, want %v", deref(e.Index), deref(c.index))
			}
			if c.id != "" && e.ID != c.id {
				t.Errorf("id = %q, want %q", e.ID, c.id)
			}
		})
	}

	// Nothing was written by the failed transactions.
	got, err := f.client.Get(ctxT(t), "blog", []string{"a", "big", "nope"}, "raw")
	if err != nil || len(got) != 0 {
		t.Errorf("documents of failed transactions are visible: %v, %v", docs(t, got), err)
	}
	list, err := f.client.Datasets(ctxT(t))
	if err != nil || len(list) != 1 {
		t.Errorf("datasets after failed creations = %v, %v; want only blog", list, err)
	}
}

func ip(i int) *int { return &i }

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestClientErrors checks what the client returns without a typed answer
// from the service, and that it never builds a subject from a bad name.
func TestClientErrors(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)

	for _, name := range []string{"", "Blog", "a.b", "a*", "a>", "a b", "-a", strings.Repeat("a", 65)} {
		_, err := f.client.Mutate(ctx, name, []byte(`{"mutations":[]}`))
		if e := vellum.AsError(err); e == nil || e.Code != "invalidDatasetName" {
			t.Errorf("Mutate on dataset %q: %v, want invalidDatasetName", name, err)
		}
		if _, err := natsapi.GetSubject(name); err == nil {
			t.Errorf("GetSubject(%q) built a subject", name)
		}
	}
	if s, err := natsapi.MutateSubject("blog-2_x"); err != nil || s != "vellum.v1.ds.blog-2_x.mutate" {
		t.Errorf("MutateSubject(blog-2_x) = %q, %v", s, err)
	}

	// With a bad token the typed error comes back as a *vellum.Error.
	bad := natsapi.NewClient(f.nc, "wrong")
	_, err := bad.Datasets(ctx)
	if e := vellum.AsError(err); e.Code != "unauthorized" {
		t.Errorf("Datasets with a wrong token: %v, want unauthorized", err)
	}

	// Nobody serves the subject: no responders, reported as unreachable.
	other := startNATS(t)
	nc, err := nats.Connect(other.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, err = natsapi.NewClient(nc, testToken).Datasets(ctx)
	if !natsapi.IsUnreachable(err) {
		t.Errorf("Datasets with no service: %v, want an unreachable error", err)
	}
}

// TestDiscovery checks that the service is a discoverable micro service with
// the documented endpoints.
func TestDiscovery(t *testing.T) {
	f := newFixture(t)
	reply, err := f.nc.Request("$SRV.INFO.vellum", nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(reply.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != natsapi.ServiceName || info.Version != natsapi.ServiceVersion || info.Description == "" {
		t.Errorf("info = %+v", info)
	}
	var eps []string
	for _, ep := range info.Endpoints {
		eps = append(eps, ep.Name+"="+ep.Subject)
	}
	want := "mutate=vellum.v1.ds.*.mutate get=vellum.v1.ds.*.get datasetCreate=vellum.v1.datasets.create datasetList=vellum.v1.datasets.list " +
		"datasetAcl=vellum.v1.datasets.acl tokenCreate=vellum.v1.tokens.create tokenList=vellum.v1.tokens.list tokenRevoke=vellum.v1.tokens.revoke explain=vellum.v1.ds.*.explain " +
		"listen=vellum.v1.ds.*.listen export=vellum.v1.ds.*.export events=vellum.v1.ds.*.events history=vellum.v1.ds.*.history " +
		"transactions=vellum.v1.ds.*.transactions accessAt=vellum.v1.ds.*.access verify=vellum.v1.audit.verify"
	if got := strings.Join(eps, " "); got != want {
		t.Errorf("endpoints = %s\nwant        %s", got, want)
	}
}

// TestStatusTable pins the status of every error code in use.
func TestStatusTable(t *testing.T) {
	for code, want := range map[string]int{
		"malformedRequest": 400, "malformedTransaction": 400, "unknownMutation": 400,
		"invalidDocumentId": 400, "typeMismatch": 400, "invalidPatchPath": 400, "invalidPatch": 400,
		"invalidDatasetName": 400, "invalidAclMode": 400, "invalidPerspective": 400,
		"queryParseError": 400, "invalidFilter": 400, "queryEvalError": 400,
		"invalidGroup": 400, "invalidToken": 400, "invalidConfig": 500,
		"unauthorized": 401, "permissionDenied": 403,
		"unknownDataset": 404, "documentNotFound": 404,
		"documentAlreadyExists": 409, "documentRevisionIDDoesNotMatch": 409, "datasetExists": 409, "transactionIdReused": 409,
		"documentTooLarge": 413, "queryNotSupported": 501, "unavailable": 503, "canceled": 503, "internal": 500,
		"someFutureCode": 500,
	} {
		if got := natsapi.Status(code); got != want {
			t.Errorf("Status(%s) = %d, want %d", code, got, want)
		}
	}
}

// TestCloseAnswersInFlight closes the server while transactions arrive: each
// one is either answered (and then applied) or finds no responder once the
// service is gone; none is left unanswered.
func TestCloseAnswersInFlight(t *testing.T) {
	f := newFixture(t)
	f.mustCreateDataset(t, "blog")
	const n = 200
	type outcome struct {
		id  string
		err error
	}
	outcomes := make(chan outcome, n)
	var wg sync.WaitGroup
	var acked atomic.Int64
	closeNow := make(chan struct{})
	var closeOnce sync.Once
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("doc-%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := f.client.Mutate(ctx, "blog", []byte(`{"mutations":[{"create":{"_id":"`+id+`","_type":"t"}}]}`))
			outcomes <- outcome{id, err}
			if err == nil && acked.Add(1) == 10 {
				closeOnce.Do(func() { close(closeNow) })
			}
		})
	}
	// Close once ten are acknowledged, with the rest still arriving.
	select {
	case <-closeNow:
	case <-time.After(10 * time.Second):
		t.Fatal("ten transactions were not acknowledged within 10s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	close(outcomes)
	answered, refused := 0, 0
	for o := range outcomes {
		switch {
		case o.err == nil:
			answered++
			got, err := f.eng.Get(ctxT(t), "blog", natsapi.AdminPrincipal, []string{o.id}, "raw")
			if err != nil || len(got) != 1 {
				t.Errorf("%s was acknowledged but is not in the engine: %v", o.id, err)
			}
		case errors.Is(o.err, nats.ErrNoResponders):
			refused++
		default:
			t.Errorf("%s: %v (neither answered nor refused)", o.id, o.err)
		}
	}
	t.Logf("%d answered, %d found no responder", answered, refused)

	// After Close, a request finds no responder at once.
	start := time.Now()
	_, err := f.client.Mutate(ctxT(t), "blog", []byte(`{"mutations":[{"create":{"_id":"late","_type":"t"}}]}`))
	if !errors.Is(err, nats.ErrNoResponders) || time.Since(start) > 2*time.Second {
		t.Errorf("a request after Close: %v after %s, want no responders at once", err, time.Since(start))
	}
}
