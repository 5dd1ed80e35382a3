package authz

import (
	"encoding/json"
	"fmt"
	"testing"
)

// benchPolicy is a dataset with 20 custom groups holding 50 grants, 30 of
// them filters, all of which the benchmark's user belongs to; the grant
// that allows the benchmark's update is the last filter grant, so every
// decision evaluates every update grant before it.
func benchPolicy(b *testing.B) (*Policy, *Principal, map[string]any, map[string]any) {
	var docs []map[string]any
	filters, paths := 0, 0
	for g := range 20 {
		var grants []any
		n := 2
		if g < 10 {
			n = 3 // 10*3 + 10*2 = 50 grants
		}
		for range n {
			var gr map[string]any
			if filters < 30 && (paths >= 20 || (filters+paths)%5 < 3) {
				typ := fmt.Sprintf("type%d", filters)
				if filters == 29 {
					typ = "post"
				}
				gr = map[string]any{"filter": fmt.Sprintf("_type == %q && author == identity()", typ), "permissions": []any{"read", "create", "update"}}
				filters++
			} else {
				gr = map[string]any{"path": fmt.Sprintf("section%d.**", paths), "permissions": []any{"read", "update"}}
				paths++
			}
			grants = append(grants, gr)
		}
		docs = append(docs, roundTrip(nil, map[string]any{
			"_id": fmt.Sprintf("_.groups.g%02d", g), "_type": GroupType,
			"members": []any{"authenticated"}, "grants": grants,
		}))
	}
	if filters != 30 || paths != 20 {
		b.Fatalf("%d filters and %d paths, want 30 and 20", filters, paths)
	}
	policy, errs := LoadPolicy("blog", ACLPublic, docs)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	alice := &Principal{ID: "alice", Authenticated: true}
	before := map[string]any{"_id": "post-1", "_type": "post", "author": "alice", "title": "Hello", "body": "Some text of a post.", "_rev": "r1"}
	after := map[string]any{"_id": "post-1", "_type": "post", "author": "alice", "title": "Hello, world", "body": "Some text of a post.", "_rev": "r2"}
	return policy, alice, before, after
}

// BenchmarkWriteDecision times the decision of one update effect (a
// Checker per transaction, then Write), next to the raw cost of encoding
// the document with encoding/json, which the engine pays for every effect
// anyway (the "no authorization" baseline); x-baseline is the ratio.
func BenchmarkWriteDecision(b *testing.B) {
	policy, alice, before, after := benchPolicy(b)
	bob := &Principal{ID: "bob", Authenticated: true}
	if _, err := policy.Checker(alice, testNow).Update("post-1", before, after); err != nil {
		b.Fatal(err)
	}
	if _, err := policy.Checker(bob, testNow).Update("post-1", before, after); err == nil {
		b.Fatal("bob may update alice's post")
	}
	// The baseline runs first; the others report their time as a multiple
	// of its last (longest) run.
	var baseNs float64
	report := func(b *testing.B) {
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if baseNs > 0 {
			b.ReportMetric(ns/baseNs, "x-baseline")
		}
	}
	b.Run("baseline=json.Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(after); err != nil {
				b.Fatal(err)
			}
		}
		baseNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("update-allowed-by-last-grant", func(b *testing.B) {
		for b.Loop() {
			if _, err := policy.Checker(alice, testNow).Update("post-1", before, after); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("update-denied-after-all-grants", func(b *testing.B) {
		for b.Loop() {
			if _, err := policy.Checker(bob, testNow).Update("post-1", before, after); err == nil {
				b.Fatal("allowed")
			}
		}
		report(b)
	})
	b.Run("create-by-path", func(b *testing.B) {
		doc := map[string]any{"_id": "section3.page", "_type": "page"}
		c := policy.Checker(alice, testNow)
		for b.Loop() {
			if _, err := c.Write("section3.page", nil, doc); err == nil {
				b.Fatal("allowed: section paths give no create")
			}
		}
		report(b)
	})
	b.Run("read", func(b *testing.B) {
		c := policy.Checker(alice, testNow)
		for b.Loop() {
			if _, ok := c.Read(after); !ok {
				b.Fatal("denied")
			}
		}
		report(b)
	})
	b.Run("checker", func(b *testing.B) {
		for b.Loop() {
			policy.Checker(alice, testNow)
		}
		report(b)
	})
}
