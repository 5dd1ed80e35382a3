package groq

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestConformance runs the official GROQ conformance suite
// (<repo>/../shared/groq-test-suite/suite.ndjson) through Compile and Eval.
// Every test is run except the categories listed in skipReason, which
// need GROQ features Vellum does not implement; the skips are counted and
// printed. valid:false tests must fail to compile.
func TestConformance(t *testing.T) {
	path, ok := suitePath()
	if !ok {
		t.Skip("groq conformance: suite not found (expected <repo>/../shared/groq-test-suite/suite.ndjson); skipping")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type test struct {
		ID       string          `json:"_id"`
		Type     string          `json:"_type"`
		Name     string          `json:"name"`
		Filename string          `json:"filename"`
		Query    string          `json:"query"`
		Result   json.RawMessage `json:"result"`
		Valid    bool            `json:"valid"`
		Params   map[string]any  `json:"params"`
		Dataset  *struct {
			Ref string `json:"_ref"`
		} `json:"dataset"`
		Documents []any `json:"documents"`
	}
	datasets := map[string][]any{}
	var tests []test
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	for sc.Scan() {
		var x test
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatal(err)
		}
		if x.Type == "dataset" {
			datasets[x.ID] = x.Documents
		} else {
			tests = append(tests, x)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	skipped := map[string]int{}
	passed, run := 0, 0
	envs := map[string]*Env{}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tc := range tests {
		if reason := skipReason(tc.Query, tc.Filename); reason != "" {
			skipped[reason]++
			continue
		}
		run++
		label := fmt.Sprintf("%s (%s)", tc.Name, tc.Filename)
		if !tc.Valid {
			// Rejected at compile time, or (a parameter the query uses is
			// not provided) with a queryParseError before evaluation, as
			// Sanity does.
			p, err := Compile(tc.Query, ModeQuery)
			if err == nil {
				_, err = p.Eval(&Env{Params: tc.Params}, nil)
				var e *Error
				if !errors.As(err, &e) || e.Code != CodeParseError {
					t.Errorf("%s: invalid query accepted: %q", label, tc.Query)
					continue
				}
			}
			passed++
			continue
		}
		p, err := Compile(tc.Query, ModeQuery)
		if err != nil {
			t.Errorf("%s: %q: compile: %v", label, tc.Query, err)
			continue
		}
		var env *Env
		if tc.Params == nil && tc.Dataset != nil {
			env = envs[tc.Dataset.Ref]
		}
		if env == nil {
			env = &Env{Identity: "me", Now: now, Params: tc.Params}
			if tc.Dataset != nil {
				env.Dataset = datasets[tc.Dataset.Ref]
			}
			if tc.Params == nil && tc.Dataset != nil {
				envs[tc.Dataset.Ref] = env
			}
		}
		got, err := p.Eval(env, nil)
		if err != nil {
			t.Errorf("%s: %q: eval: %v\n  CEL: %s", label, tc.Query, err, p.CEL())
			continue
		}
		var want any
		if err := json.Unmarshal(tc.Result, &want); err != nil {
			t.Fatal(err)
		}
		got = scoresToPositions(got, want)
		if !jsonEqual(got, want) {
			gb, _ := json.Marshal(got)
			t.Errorf("%s: %q:\n  got  %s\n  want %s\n  CEL: %s", label, tc.Query, gb, tc.Result, p.CEL())
			continue
		}
		passed++
	}
	total := len(tests)
	nskip := total - run
	var reasons []string
	for r := range skipped {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		t.Logf("groq conformance: skipped %4d: %s", skipped[r], r)
	}
	coverage := float64(run) / float64(total)
	t.Logf("groq conformance: passed %d of %d run (%d skipped, file total %d, coverage %d/%d = %.1f%%)",
		passed, run, nskip, total, run, total, 100*coverage)
	if coverage < 0.70 {
		t.Errorf("groq conformance: coverage %.1f%% is below 70%%", 100*coverage)
	}
}

// skipReason returns why a test is not run, or "" to run it.
func skipReason(query, filename string) string {
	switch {
	case strings.Contains(query, "sanity::"), strings.Contains(query, "releases::"):
		return "sanity::/releases:: project functions are not implemented"
	case strings.Contains(query, "geo::"):
		return "geo:: functions are not implemented"
	case strings.Contains(query, "dateTime::"):
		return "dateTime:: namespace functions beyond dateTime() are not implemented"
	}
	return ""
}

func suitePath() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "..", "shared", "groq-test-suite", "suite.ndjson")
			_, err := os.Stat(p)
			return p, err == nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// jsonEqual compares JSON values, numbers as numbers.
func jsonEqual(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool:
		bb, ok := b.(bool)
		return ok && a == bb
	case string:
		bs, ok := b.(string)
		return ok && a == bs
	case float64:
		bf, ok := b.(float64)
		return ok && (a == bf || math.Abs(a-bf) <= 1e-9*math.Max(math.Abs(a), math.Abs(bf)))
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !jsonEqual(a[i], bl[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			w, ok := bm[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

// scoresToPositions follows the suite's convention for score(): when the
// expected objects carry _pos instead of _score, each _score is replaced
// by its rank among the distinct scores (1 = highest), since the scores
// themselves are implementation-defined.
func scoresToPositions(got, want any) any {
	wl, ok := want.([]any)
	if !ok || len(wl) == 0 {
		return got
	}
	if m, ok := wl[0].(map[string]any); !ok || m["_pos"] == nil {
		return got
	}
	gl, ok := got.([]any)
	if !ok {
		return got
	}
	var scores []float64
	for _, e := range gl {
		if m, ok := e.(map[string]any); ok {
			if s, ok := m["_score"].(float64); ok && !slices.Contains(scores, s) {
				scores = append(scores, s)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(scores)))
	out := make([]any, len(gl))
	for i, e := range gl {
		m, ok := e.(map[string]any)
		s, isNum := m["_score"].(float64)
		if !ok || !isNum {
			out[i] = e
			continue
		}
		c := make(map[string]any, len(m))
		for k, v := range m {
			if k != "_score" {
				c[k] = v
			}
		}
		c["_pos"] = float64(slices.Index(scores, s) + 1)
		out[i] = c
	}
	return out
}
