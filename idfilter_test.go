package vellum

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
)

// sliceIDs is an id source for idFilter.scan.
func sliceIDs(ids ...string) func(context.Context, func(string) error) error {
	return func(ctx context.Context, fn func(string) error) error {
		for _, id := range ids {
			if err := fn(id); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestIDFilter(t *testing.T) {
	var f idFilter
	gen := f.reset()
	f.add("written-during-scan")
	if f.absent("never") {
		t.Fatal("absent answered true before the scan finished")
	}
	if err := f.scan(context.Background(), gen, sliceIDs("a", "b")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "written-during-scan"} {
		if f.absent(id) {
			t.Errorf("absent(%q) = true for a stored id", id)
		}
	}
	if !f.absent("never") {
		t.Error(`absent("never") = false (a false positive in a filter of 3 ids)`)
	}

	// A scan that a reset overtook neither adds nor makes the filter ready.
	old := gen
	gen = f.reset()
	if err := f.scan(context.Background(), old, sliceIDs("stale")); err != nil {
		t.Fatal(err)
	}
	if f.absent("x") {
		t.Error("a scan of an older generation made the filter ready")
	}
	// A failed scan leaves it not ready: lookups are made as before.
	boom := errors.New("boom")
	if err := f.scan(context.Background(), gen, func(context.Context, func(string) error) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("scan returned %v, want %v", err, boom)
	}
	if f.absent("x") {
		t.Error("a failed scan made the filter ready")
	}

	// The writer's additions beyond twice the scanned ids and the slack
	// make the filter overgrown; a reset starts the count over.
	gen = f.reset()
	if err := f.scan(context.Background(), gen, sliceIDs("s1", "s2")); err != nil {
		t.Fatal(err)
	}
	f.added = 2*2 + idFilterSlack
	if f.overgrown() {
		t.Error("overgrown at exactly twice the scanned ids plus the slack")
	}
	f.add("one-more")
	if !f.overgrown() {
		t.Error("not overgrown past twice the scanned ids plus the slack")
	}
	f.reset()
	if f.overgrown() {
		t.Error("overgrown right after a reset")
	}

	// Layers grow past the first one's capacity; every added id stays
	// present and the share of false positives stays near the target.
	gen = f.reset()
	n := 2*idFilterFirst + 17
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("doc-%d", i)
	}
	if err := f.scan(context.Background(), gen, sliceIDs(ids...)); err != nil {
		t.Fatal(err)
	}
	if len(f.layers) != 2 {
		t.Errorf("%d ids in %d layers, want 2 (capacities %d and %d)", n, len(f.layers), idFilterFirst, 2*idFilterFirst)
	}
	for _, id := range ids {
		if f.absent(id) {
			t.Fatalf("absent(%q) = true for a stored id", id)
		}
	}
	fp := 0
	const probes = 100_000
	for i := range probes {
		if !f.absent(fmt.Sprintf("new-%d", i)) {
			fp++
		}
	}
	if rate := float64(fp) / probes; rate > 2*idFilterFalsePositive*float64(len(f.layers)) {
		t.Errorf("false positives %.3f, want at most %.3f", rate, 2*idFilterFalsePositive*float64(len(f.layers)))
	}
}

// waitIDFilter waits until dataset ds's filter of stored ids is ready.
func waitIDFilter(t *testing.T, e *Engine, ds string) {
	t.Helper()
	d, err := e.dataset(ds)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d.w.ids.mu.Lock()
		ready := d.w.ids.ready
		d.w.ids.mu.Unlock()
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the filter of stored ids is not ready after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestIDFilterKeepsCreatesHonest checks that skipping the lookup of new ids
// never lets a create overwrite a stored document: not for ids stored
// before the engine opened (found by the scan), not for ids written since
// (added by the writer), and not after a rebuild brings back a document
// that the projection had lost.
func TestIDFilterKeepsCreatesHonest(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, dir)
	if _, err := e.CreateDataset(context.Background(), SystemPrincipal, "ds", "public"); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		mustTransact(t, e, "ds", fmt.Sprintf(`{"mutations":[{"create":{"_id":"old-%d","_type":"t"}}]}`, i))
	}
	mustTransact(t, e, "ds", `{"mutations":[{"create":{"_id":"lost","_type":"t"}}]}`)
	d, _ := e.dataset("ds")
	num := d.num
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// The projection loses "lost" (as a damaged store might): only the log
	// still has it.
	db, err := eventlog.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Pebble().Delete(append(eventlog.KeyPrefix(num, eventlog.SpaceDocs), "lost"...), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()

	e = openTest(t, dir)
	defer e.Close()
	waitIDFilter(t, e, "ds")
	wantExists := func(id string) {
		t.Helper()
		_, err := e.Transact(context.Background(), "ds", SystemPrincipal, []byte(fmt.Sprintf(`{"mutations":[{"create":{"_id":%q,"_type":"t","again":true}}]}`, id)))
		if err == nil || AsError(err).Code != "documentAlreadyExists" {
			t.Errorf("create of stored %q: %v, want documentAlreadyExists", id, err)
		}
	}
	for i := range 100 {
		wantExists(fmt.Sprintf("old-%d", i))
	}
	mustTransact(t, e, "ds", `{"mutations":[{"create":{"_id":"new","_type":"t"}}]}`)
	// An exclusive job empties the writer's cache of recent documents,
	// so that the next create of "new" consults the filter.
	dd, _ := e.dataset("ds")
	if _, err := dd.w.submit(context.Background(), job{fn: func() error { return nil }}); err != nil {
		t.Fatal(err)
	}
	wantExists("new")
	// Deleted, then created again: the filter still says "maybe", the
	// lookup says absent.
	mustTransact(t, e, "ds", `{"mutations":[{"delete":{"id":"new"}}]}`)
	mustTransact(t, e, "ds", `{"mutations":[{"create":{"_id":"new","_type":"t"}}]}`)

	if err := e.Rebuild(context.Background(), "ds"); err != nil {
		t.Fatal(err)
	}
	if docs, err := e.Get(context.Background(), "ds", SystemPrincipal, []string{"lost"}, "raw"); err != nil || len(docs) != 1 {
		t.Fatalf("after the rebuild, Get(lost) = %d documents, %v; want the document back", len(docs), err)
	}
	waitIDFilter(t, e, "ds")
	wantExists("lost")
	wantExists("new")

	// A filter the writer has grown too much is started over between
	// groups, and stays honest.
	dd.w.ids.mu.Lock()
	gen := dd.w.ids.gen
	dd.w.ids.added = 1 << 40
	dd.w.ids.mu.Unlock()
	mustTransact(t, e, "ds", `{"mutations":[{"create":{"_id":"after-overgrown","_type":"t"}}]}`)
	dd.w.ids.mu.Lock()
	regen := dd.w.ids.gen
	dd.w.ids.mu.Unlock()
	if regen == gen {
		t.Error("an overgrown filter was not started over")
	}
	waitIDFilter(t, e, "ds")
	if _, err := dd.w.submit(context.Background(), job{fn: func() error { return nil }}); err != nil {
		t.Fatal(err)
	}
	wantExists("old-7")
	wantExists("after-overgrown")
}
