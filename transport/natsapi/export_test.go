package natsapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/transport/natsapi"
)

// smallPayload is the NATS message limit of these tests: an export or a
// replay of a few hundred kilobytes then takes many pages.
const smallPayload = 32 << 10

// newPagingFixture is a real NATS server with a small max_payload, the real
// engine and the service, with an administrator client and an anonymous
// one.
func newPagingFixture(t *testing.T) (eng *vellum.Engine, admin, anon *natsapi.Client) {
	t.Helper()
	return newPagingFixtureSize(t, smallPayload)
}

// newPagingFixtureSize is newPagingFixture with a NATS server whose
// messages may be maxPayload bytes.
func newPagingFixtureSize(t *testing.T, maxPayload int32) (eng *vellum.Engine, admin, anon *natsapi.Client) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true, MaxPayload: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS server not ready")
	}
	eng, err = vellum.Open(t.TempDir(), vellum.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := natsapi.Serve(svc, eng, natsapi.Options{Auth: natsapi.AdminToken(testToken, &authz.Authenticator{Tokens: eng})})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(ctx)
		svc.Close()
		eng.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return eng, natsapi.NewClient(nc, testToken), natsapi.NewClient(nc, "")
}

// TestExportAndReplayInPages exports and replays a dataset several times
// larger than a NATS message, and checks that the pages add up to exactly
// what the engine holds, consistent across writes made in between.
func TestExportAndReplayInPages(t *testing.T) {
	eng, admin, anon := newPagingFixture(t)
	ctx := ctxT(t)
	if _, err := eng.CreateDataset(ctx, vellum.SystemPrincipal, "blog", "public"); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("lorem ipsum ", 80)
	var mid string
	for i := range 300 {
		tx := fmt.Sprintf(`{"mutations":[{"createOrReplace":{"_id":"post-%03d","_type":"post","n":%d,"body":%q}},{"create":{"_id":"secret.s%03d","_type":"s"}}]}`, i%200, i, body, i)
		res, err := eng.Transact(ctx, "blog", vellum.SystemPrincipal, []byte(tx))
		if err != nil {
			t.Fatal(err)
		}
		if i == 150 {
			mid = res.TransactionID
		}
	}

	var want []string
	seq, _, err := eng.Export(ctx, "blog", vellum.SystemPrincipal, vellum.ExportOptions{At: vellum.Point{TxID: mid}}, func(doc []byte) error {
		want = append(want, string(doc))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Page by page, with a write between the first and the second page.
	var got []string
	r := natsapi.ExportRequest{At: mid}
	pages := 0
	for {
		page, err := admin.ExportPage(ctx, "blog", r)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if page.Seq != seq {
			t.Fatalf("page %d shows event %d, want %d", pages, page.Seq, seq)
		}
		for _, d := range page.Documents {
			got = append(got, string(d))
		}
		if pages == 1 {
			if _, err := eng.Transact(ctx, "blog", vellum.SystemPrincipal, []byte(`{"mutations":[{"delete":{"id":"post-199"}}]}`)); err != nil {
				t.Fatal(err)
			}
		}
		if !page.More {
			break
		}
		r.Seq, r.After = page.Seq, page.Next
	}
	if pages < 5 {
		t.Errorf("%d pages for %d documents of ~1 KiB under a %d-byte message limit", pages, len(got), smallPayload)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the pages hold %d documents, the engine's export %d (or they differ)", len(got), len(want))
	}

	// Everyone sees only the root path, through the same pages.
	n := 0
	if _, err := anon.Export(ctx, "blog", natsapi.ExportRequest{}, func(doc json.RawMessage) error {
		if strings.Contains(string(doc), `"secret.`) {
			t.Errorf("everyone exported %s", doc)
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 199 {
		t.Errorf("everyone exported %d documents, want 199", n)
	}

	// Replay through the pages: the copy holds the source's prefix.
	first, err := admin.EventsPage(ctx, "blog", natsapi.EventsRequest{To: mid})
	if err != nil {
		t.Fatal(err)
	}
	if first.To != 151 || first.ACL != "public" {
		t.Fatalf("first page: to %d, acl %q", first.To, first.ACL)
	}
	src := func(ctx context.Context, emit func([]byte) error) error {
		return vellum.PageEvents(ctx, first, func(ctx context.Context, after uint64, limit int) (*vellum.EventsPage, error) {
			return admin.EventsPage(ctx, "blog", natsapi.EventsRequest{ToSeq: first.To, After: after, Limit: limit})
		}, emit)
	}
	dir := filepath.Join(t.TempDir(), "copy")
	res, err := vellum.Replay(ctx, dir, "blog", first.ACL, src, vellum.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "local")
	direct, err := eng.ReplayTo(ctx, "blog", vellum.SystemPrincipal, vellum.Point{Seq: 151}, local, vellum.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 151 || res.HeadHash != direct.HeadHash || res.HeadHash == "" {
		t.Errorf("replay over NATS %+v, direct %+v", res, direct)
	}
}

// TestDefaultPageBytes checks that a page whose request names no size
// holds at most DefaultPageBytes, even where messages may be much larger
// (vellumd's embedded server allows 64 MiB), so that a client's work on a
// page overlaps the transfer of the next, and that a request may ask for
// larger pages.
func TestDefaultPageBytes(t *testing.T) {
	eng, admin, _ := newPagingFixtureSize(t, 16<<20)
	ctx := ctxT(t)
	if _, err := eng.CreateDataset(ctx, vellum.SystemPrincipal, "blog", "public"); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("x", 1500)
	for i := range 300 {
		var muts []string
		for j := range 10 {
			muts = append(muts, fmt.Sprintf(`{"create":{"_id":"post-%d-%d","_type":"post","body":%q}}`, i, j, body))
		}
		if _, err := eng.Transact(ctx, "blog", vellum.SystemPrincipal, []byte(`{"mutations":[`+strings.Join(muts, ",")+`]}`)); err != nil {
			t.Fatal(err)
		}
	}
	eventBytes := func(p *vellum.EventsPage) int {
		n := 0
		for _, ev := range p.Events {
			n += len(ev)
		}
		return n
	}
	page, err := admin.EventsPage(ctx, "blog", natsapi.EventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := eventBytes(page); n > natsapi.DefaultPageBytes || !page.More || n < natsapi.DefaultPageBytes/2 {
		t.Errorf("a default events page holds %d bytes (more: %v), want at most %d and more to come", n, page.More, natsapi.DefaultPageBytes)
	}
	page, err = admin.EventsPage(ctx, "blog", natsapi.EventsRequest{MaxBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if n := eventBytes(page); n <= 2<<20 || n > 4<<20 {
		t.Errorf("an events page asked for 4 MiB holds %d bytes", n)
	}
	export, err := admin.ExportPage(ctx, "blog", natsapi.ExportRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range export.Documents {
		n += len(d)
	}
	if n > natsapi.DefaultPageBytes || !export.More || n < natsapi.DefaultPageBytes/2 {
		t.Errorf("a default export page holds %d bytes of documents (more: %v), want at most %d and more to come", n, export.More, natsapi.DefaultPageBytes)
	}
}

// TestEventsPagesConcurrently asks for many events pages at once, so that
// the service reuses its page buffers across requests, and compares each
// with the engine's own page of the same range.
func TestEventsPagesConcurrently(t *testing.T) {
	eng, admin, _ := newPagingFixtureSize(t, 1<<20)
	ctx := ctxT(t)
	if _, err := eng.CreateDataset(ctx, vellum.SystemPrincipal, "blog", "public"); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		body := fmt.Sprintf(`{"mutations":[{"create":{"_id":"post-%d","_type":"post","body":%q}}]}`, i, strings.Repeat(string(rune('a'+i%26)), 200+i*13%900))
		if _, err := eng.Transact(ctx, "blog", vellum.SystemPrincipal, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	head, err := eng.Head("blog")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for k := range 20 {
				after := uint64((g*37 + k*11) % int(head))
				limit := 1 + (g+k)%60
				maxBytes := 4096 + (g*k%5)*8192
				got, err := admin.EventsPage(ctx, "blog", natsapi.EventsRequest{ToSeq: head, After: after, Limit: limit, MaxBytes: maxBytes})
				if err != nil {
					t.Error(err)
					return
				}
				want, err := eng.EventsPage(ctx, "blog", vellum.SystemPrincipal, vellum.EventsOptions{ToSeq: head, After: after, Limit: limit, MaxBytes: maxBytes})
				if err != nil {
					t.Error(err)
					return
				}
				if len(got.Events) != len(want.Events) || got.More != want.More {
					t.Errorf("after %d, limit %d, %d bytes: %d events (more %v) over NATS, %d (more %v) from the engine", after, limit, maxBytes, len(got.Events), got.More, len(want.Events), want.More)
					return
				}
				for i := range got.Events {
					if !bytes.Equal(got.Events[i], want.Events[i]) {
						t.Errorf("after %d, limit %d: event %d differs", after, limit, after+uint64(i)+1)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestExportAndEventsErrors(t *testing.T) {
	eng, admin, anon := newPagingFixture(t)
	ctx := ctxT(t)
	if _, err := eng.CreateDataset(ctx, vellum.SystemPrincipal, "blog", "public"); err != nil {
		t.Fatal(err)
	}
	big := fmt.Sprintf(`{"mutations":[{"create":{"_id":"big","_type":"t","body":%q}}]}`, strings.Repeat("x", 2*smallPayload))
	if _, err := eng.Transact(ctx, "blog", vellum.SystemPrincipal, []byte(big)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		call func() error
		code string
		say  string
	}{
		{"unknown transaction", func() error {
			_, err := admin.ExportPage(ctx, "blog", natsapi.ExportRequest{At: "no-such-tx"})
			return err
		}, "unknownTransaction", "no-such-tx"},
		{"malformed time", func() error {
			_, err := admin.EventsPage(ctx, "blog", natsapi.EventsRequest{To: "2026-02-30T00:00:00Z"})
			return err
		}, "invalidTime", "RFC 3339"},
		{"time before the dataset", func() error {
			_, err := admin.ExportPage(ctx, "blog", natsapi.ExportRequest{At: "2001-01-01T00:00:00Z"})
			return err
		}, "timeBeforeDataset", "did not exist yet"},
		{"everyone reads no log", func() error {
			_, err := anon.EventsPage(ctx, "blog", natsapi.EventsRequest{})
			return err
		}, "permissionDenied", "administrator"},
		{"a document larger than a message", func() error {
			_, err := admin.ExportPage(ctx, "blog", natsapi.ExportRequest{})
			return err
		}, "documentTooLarge", `document "big"`},
		{"an event larger than a message", func() error {
			_, err := admin.EventsPage(ctx, "blog", natsapi.EventsRequest{})
			return err
		}, "documentTooLarge", "event 1"},
		{"unknown dataset", func() error {
			_, err := admin.ExportPage(ctx, "nope", natsapi.ExportRequest{})
			return err
		}, "unknownDataset", "nope"},
	} {
		err := c.call()
		ve, ok := err.(*vellum.Error)
		if !ok || ve.Code != c.code || !strings.Contains(ve.Description, c.say) {
			t.Errorf("%s: %v; want %s saying %q", c.name, err, c.code, c.say)
		}
	}
}

// BenchmarkExportOverNATS measures an export as `vellum export` makes it:
// page after page over a real NATS server (default 1 MiB messages), of a
// dataset of VELLUM_BENCH_DOCS documents (200,000 by default). The baseline
// is the engine's own Export of the same dataset in the same run, without
// NATS; the ratio is what paging over NATS costs.
func BenchmarkExportOverNATS(b *testing.B) {
	docs := 200_000
	if v, err := strconv.Atoi(os.Getenv("VELLUM_BENCH_DOCS")); err == nil && v > 0 {
		docs = v
	}
	f := newFixtureAuth(b, func(*vellum.Engine) natsapi.Authenticator { return natsapi.AdminToken(testToken, nil) })
	ctx := context.Background()
	if _, err := f.eng.CreateDataset(ctx, vellum.SystemPrincipal, "bench", "public"); err != nil {
		b.Fatal(err)
	}
	const perTx = 500
	var tx strings.Builder
	for i := 0; i < docs; i += perTx {
		tx.Reset()
		tx.WriteString(`{"mutations":[`)
		for j := i; j < min(i+perTx, docs); j++ {
			if j > i {
				tx.WriteByte(',')
			}
			fmt.Fprintf(&tx, `{"create":{"_id":"doc-%07d","_type":"post","n":%d,"title":"A title of a typical length for a post","tags":["news","go"]}}`, j, j)
		}
		tx.WriteString(`]}`)
		if _, err := f.eng.Transact(ctx, "bench", vellum.SystemPrincipal, []byte(tx.String())); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var nats, direct time.Duration
	for range b.N {
		start := time.Now()
		n := 0
		if _, err := f.client.Export(ctx, "bench", natsapi.ExportRequest{}, func(json.RawMessage) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		nats += time.Since(start)
		if n != docs {
			b.Fatalf("exported %d documents over NATS, want %d", n, docs)
		}
		b.StopTimer()
		start = time.Now()
		if _, m, err := f.eng.Export(ctx, "bench", vellum.SystemPrincipal, vellum.ExportOptions{}, func([]byte) error { return nil }); err != nil || m != int64(docs) {
			b.Fatalf("engine export: %d, %v", m, err)
		}
		direct += time.Since(start)
		b.StartTimer()
	}
	rate := float64(docs*b.N) / nats.Seconds()
	base := float64(docs*b.N) / direct.Seconds()
	b.ReportMetric(rate, "docs/s")
	b.ReportMetric(base, "engine-docs/s")
	b.Logf("export over NATS %.0f documents/s; the engine's export of the same documents %.0f documents/s; ratio %.2f", rate, base, rate/base)
}
