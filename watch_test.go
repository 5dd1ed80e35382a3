package vellum

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// watched is what a test keeps of a commit: enough to compare a live
// delivery with one read back from the log.
type watched struct {
	Seq    uint64
	TxID   string
	Docs   []CommitDoc
	Policy bool
}

func collect(t *testing.T, w *Watcher, n int) []watched {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []watched
	for len(out) < n {
		c, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d commits: %v", len(out), err)
		}
		docs := make([]CommitDoc, len(c.Docs))
		for i, d := range c.Docs {
			docs[i] = CommitDoc{ID: d.ID, Before: d.Before, After: d.After} // AfterJSON is checked below
			if d.After != nil {
				var again map[string]any
				if err := json.Unmarshal(d.AfterJSON, &again); err != nil || !reflect.DeepEqual(again, d.After) {
					t.Fatalf("commit %d: AfterJSON %s does not encode After %v (%v)", c.Event.Seq, d.AfterJSON, d.After, err)
				}
			}
		}
		out = append(out, watched{Seq: c.Event.Seq, TxID: c.Event.TxID, Docs: docs, Policy: c.Policy != nil})
	}
	return out
}

func TestWatchDeliversEveryCommitOnceInOrder(t *testing.T) {
	e := newTestEngine(t, "blog")
	// History before the watcher starts, with a large document so that some
	// effects are diffs, and a delete.
	big := make([]string, 200)
	for i := range big {
		big[i] = fmt.Sprintf("paragraph %d of a long body", i)
	}
	bigJSON, _ := json.Marshal(big)
	mustTransact(t, e, "blog", `{"mutations":[{"create":{"_id":"a","_type":"post","title":"one","body":`+string(bigJSON)+`}}]}`)
	mustTransact(t, e, "blog", `{"mutations":[{"patch":{"id":"a","set":{"title":"two"}}}]}`)
	mustTransact(t, e, "blog", `{"mutations":[{"create":{"_id":"b","_type":"post"}},{"delete":{"id":"a"}}]}`)

	// A watcher with a buffer of 1 from the start: most live commits overflow
	// and must be read from the log, exactly once each, in order.
	small, err := e.Watch("blog", 0, WatchOptions{Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	live, err := e.Watch("blog", 3, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	const writers, each = 4, 25
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				mustTransact(t, e, "blog", fmt.Sprintf(`{"mutations":[{"createOrReplace":{"_id":"w%d","_type":"count","n":%d}}]}`, g, i))
			}
		}()
	}
	wg.Wait()
	total := 3 + writers*each

	got := collect(t, small, total)
	for i, c := range got {
		if c.Seq != uint64(i+1) {
			t.Fatalf("commit %d has sequence number %d", i, c.Seq)
		}
	}
	if a := got[1].Docs[0]; a.Before["title"] != "one" || a.After["title"] != "two" {
		t.Errorf("patch commit read back from the log: before %v, after %v", a.Before["title"], a.After["title"])
	}
	if del := got[2].Docs[1]; del.ID != "a" || del.Before["title"] != "two" || del.After != nil {
		t.Errorf("delete commit: %+v", del)
	}

	// The live watcher saw the same commits after event 3, with the same
	// documents, whether they came live or from the log.
	fromLive := collect(t, live, total-3)
	for i := range fromLive {
		fromLive[i].Policy = false
		got[3+i].Policy = false
	}
	if !reflect.DeepEqual(fromLive, got[3:]) {
		t.Errorf("a live watcher and a log-reading watcher disagree")
	}

	// Nothing more is pending: Next waits.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if c, err := small.Next(ctx); err == nil {
		t.Errorf("Next returned commit %d beyond the head", c.Event.Seq)
	}
}

func TestWatchErrors(t *testing.T) {
	e := newTestEngine(t, "blog")
	if _, err := e.Watch("nope", 0, WatchOptions{}); AsError(err).Code != CodeUnknownDataset {
		t.Errorf("unknown dataset: %v", err)
	}
	if _, err := e.Watch("blog", 5, WatchOptions{}); AsError(err).Code != CodeInvalidRequest {
		t.Errorf("beyond the head: %v", err)
	}
	w, err := e.Watch("blog", 0, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := w.Next(context.Background()); AsError(err).Code != CodeUnavailable {
		t.Errorf("Next after Close: %v", err)
	}
}

func TestAccessChanged(t *testing.T) {
	e := newTestEngine(t, "blog")
	ch := e.AccessChanged()
	mustTransact(t, e, "blog", `{"mutations":[{"create":{"_id":"a","_type":"post"}}]}`)
	select {
	case <-ch:
		t.Fatal("a content write signalled an access change")
	default:
	}
	mustTransact(t, e, "blog", `{"mutations":[{"create":{"_id":"_.groups.authors","_type":"system.group","members":["alice"],"grants":[{"filter":"_type == 'post'","permissions":["read"]}]}}]}`)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("a group write did not signal an access change")
	}
	ch = e.AccessChanged()
	if _, err := e.SetDatasetACL(context.Background(), SystemPrincipal, "blog", "private"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("an acl change did not signal an access change")
	}
	ch = e.AccessChanged()
	if _, _, err := e.CreateToken(context.Background(), SystemPrincipal, "ci", "viewer", "blog"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("a new token did not signal an access change")
	}
}
