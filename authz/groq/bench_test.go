package groq

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// The benchmark inputs are shared with the groq-js harness
// (testdata/groqjs): keep testdata/bench stable.

func benchInputs(tb testing.TB) (map[string]any, []string) {
	tb.Helper()
	raw, err := os.ReadFile("testdata/bench/doc.json")
	if err != nil {
		tb.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Open("testdata/bench/filters.txt")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var filters []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			filters = append(filters, line)
		}
	}
	if len(filters) != 3 {
		tb.Fatalf("want 3 benchmark filters, got %d", len(filters))
	}
	return doc, filters
}

var benchEnv = &Env{Identity: "user-123", Now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}

// TestBenchFilters checks that the benchmark filters compile in filter
// mode and all match the benchmark document (so the benchmark measures a
// full evaluation, not a short cut).
func TestBenchFilters(t *testing.T) {
	doc, filters := benchInputs(t)
	for _, f := range filters {
		p, err := Compile(f, ModeFilter)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ok, err := p.Match(benchEnv, doc)
		if err != nil || !ok {
			t.Errorf("%s: Match = %v, %v; want true", f, ok, err)
		}
		for i, raw := range rawFilters {
			if raw(benchEnv, doc) != (i < len(filters) && f == filters[i]) && f == filters[i] {
				t.Errorf("raw baseline %d disagrees", i)
			}
		}
	}
}

// rawFilters are the benchmark filters hand-written in Go: the baseline
// the compiled programs are measured against.
var rawFilters = []func(env *Env, doc map[string]any) bool{
	func(env *Env, doc map[string]any) bool {
		return doc["_type"] == "post" && doc["author"] == env.Identity
	},
	func(env *Env, doc map[string]any) bool {
		id, ok := doc["_id"].(string)
		return ok && strings.HasPrefix(id, "drafts.")
	},
	func(env *Env, doc map[string]any) bool {
		t := doc["_type"]
		if t != "post" && t != "article" {
			return false
		}
		slug, _ := doc["slug"].(map[string]any)
		if slug == nil || slug["current"] == nil {
			return false
		}
		title, _ := doc["title"].(string)
		hit := false
		for _, tok := range tokenize(title, false, nil) {
			if len(tok) >= 4 && strings.EqualFold(tok[:4], "groq") {
				hit = true
			}
		}
		if !hit || doc["status"] == "archived" {
			return false
		}
		p, ok := doc["priority"].(float64)
		if !ok || p < 2 {
			return false
		}
		tags, ok := doc["tags"].([]any)
		return ok && len(tags) > 1
	},
}

func BenchmarkFilter(b *testing.B) {
	doc, filters := benchInputs(b)
	names := []string{"two-clause", "path", "six-clause"}
	for i, f := range filters {
		p, err := Compile(f, ModeFilter)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(names[i]+"/cel", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ok, err := p.Match(benchEnv, doc)
				if !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
		raw := rawFilters[i]
		b.Run(names[i]+"/raw-go", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !raw(benchEnv, doc) {
					b.Fatal("no match")
				}
			}
		})
	}
}

// BenchmarkCompileCached measures Compile on a cache hit.
func BenchmarkCompileCached(b *testing.B) {
	_, filters := benchInputs(b)
	if _, err := Compile(filters[2], ModeFilter); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(filters[2], ModeFilter); err != nil {
			b.Fatal(err)
		}
	}
}
