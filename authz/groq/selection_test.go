package groq

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var selDocs = []map[string]any{
	{"_id": "a", "_type": "post", "n": 3.0},
	{"_id": "b", "_type": "post", "n": 1.0},
	{"_id": "drafts.a", "_type": "post", "n": 2.0},
	{"_id": "c", "_type": "author", "n": 5.0},
	{"_id": "d", "_type": "post"},
}

func TestSelect(t *testing.T) {
	env := &Env{Params: map[string]any{"ids": []any{"a", "c", "zz"}, "t": "post", "lo": 1.0}}
	for _, tc := range []struct {
		query string
		want  string // ids, space separated, or "error CODE"
	}{
		{`*[_id in $ids]`, "a c"},
		{`*[_id in $ids]._id`, "a c"},
		{`*[_type == $t]`, "a b drafts.a d"},
		{`*[_type == "post"] | order(n)`, "b drafts.a a d"},
		{`*[_type == "post"] | order(n desc)`, "d a drafts.a b"}, // null sorts last, so first when descending
		{`*[_type == "post"] | order(n desc)[0]`, "d"},
		{`*[_type == "post"] | order(n)[1..2]._id`, "drafts.a a"},
		{`*[_type == "post"] | order(n)[1...2]`, "drafts.a"},
		{`*[_type == "post"][-1]`, "d"},
		{`*[_type == "post"][$lo...10]`, "b drafts.a d"},
		{`*[_type == "post"][10]`, ""},
		{`*[_id in path("drafts.**")]`, "drafts.a"},
		{`*[n > ^.n]`, ""},                                                           // ^ is the root scope: null
		{`*[_type == "post" && count(*[_type == "author"]) == 0]`, "a b drafts.a d"}, // * is Env.Dataset: empty here
		{`*[_id == $missing]`, "error queryParseError"},
		{`*{_id}`, "error queryNotSupported"},
		{`*[_type == "post"] | score(n)`, "error queryNotSupported"},
		{`[1,2][@ > 1]`, "error queryNotSupported"},
		{`*[_type ==`, "error queryParseError"},
	} {
		got, err := selectIDs(tc.query, env)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("%s: untyped error %v", tc.query, err)
				continue
			}
			got = "error " + e.Code
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.query, got, tc.want)
		}
	}
}

func selectIDs(query string, env *Env) (string, error) {
	s, err := CompileSelection(query)
	if err != nil {
		return "", err
	}
	docs, err := s.Select(env, slices.Values(selDocs))
	if err != nil {
		return "", err
	}
	var ids []string
	for _, d := range docs {
		ids = append(ids, fmt.Sprint(d["_id"]))
	}
	return strings.Join(ids, " "), nil
}

// TestCache checks that programs are cached by (mode, text), that the
// cache is bounded and that concurrent compiles and evaluations are safe.
func TestCache(t *testing.T) {
	p1, err := Compile(`_type == "cachetest"`, ModeQuery)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := Compile(`_type == "cachetest"`, ModeQuery)
	p3, _ := Compile(`_type == "cachetest"`, ModeFilter)
	if p1 != p2 || p1 == p3 {
		t.Fatalf("cache by (mode, text): same=%v, other mode same=%v", p1 == p2, p1 == p3)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				q := fmt.Sprintf(`n == %d`, (g*300+i)%700)
				p, err := Compile(q, ModeFilter)
				if err != nil {
					t.Error(err)
					return
				}
				ok, err := p.Match(&Env{}, map[string]any{"n": float64((g*300 + i) % 700)})
				if !ok || err != nil {
					t.Errorf("%s: %v %v", q, ok, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	for i := 0; i < CacheSize+10; i++ {
		cache.put(cacheKey{ModeQuery, fmt.Sprint("bound", i)}, p1)
	}
	if n := cache.len(); n != CacheSize {
		t.Fatalf("cache holds %d programs, want the bound %d", n, CacheSize)
	}
}

// TestCostLimit checks that an evaluation over the cost limit stops with
// a queryEvalError instead of running on.
func TestCostLimit(t *testing.T) {
	docs := make([]any, 10000)
	for i := range docs {
		docs[i] = map[string]any{"_id": fmt.Sprint(i), "n": float64(i)}
	}
	env := &Env{Dataset: docs}
	p, err := Compile(`count(*[count(*[n > ^.n]) > 0])`, ModeQuery) // 10^8 comparisons: minutes without the limit
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = p.Eval(env, nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeEvalError || !strings.Contains(e.Description, "cost limit") {
		t.Fatalf("got %v, want a queryEvalError about the cost limit", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("stopping took %v", d)
	}
	// A filter that is cheap is not tracked at run time: its static
	// estimate is within the limit.
	f, _ := Compile(`_type == "post" && author == identity()`, ModeFilter)
	if f.tracked {
		t.Errorf("two-clause filter is tracked at run time; its static cost is bounded")
	}
}

// TestMatchCost checks that match and path patterns that need a regular
// expression charge the length of their input to the evaluation, untracked
// (the static estimate leaves them a budget) or tracked (in a comprehension,
// charged to CEL's tracker): a long enough text goes over the cost limit.
func TestMatchCost(t *testing.T) {
	term := strings.Repeat("w", 160)         // a 160-byte term: 11 units per 16 bytes of text
	long := strings.Repeat("word ", 1<<18)   // 1.25 MB: 900k units
	longer := strings.Repeat("word ", 1<<19) // 2.5 MB: 1.8M units, over the filter limit
	for _, tc := range []struct {
		filter  string
		tracked bool
	}{
		{`title match "` + term + `*"`, false},
		{`title match ["x", "` + term + `*"]`, true}, // not a literal string: the general match
		{`tags match "` + term + `*"`, false},
		{`count(tags[@ == "x"]) == 0 && title match "` + term + `*"`, true},
		{`count(tags[@ == "x"]) == 0 && title in path("*.` + term + `")`, true},
		{`title in path("*.` + term + `")`, false},
	} {
		p, err := Compile(tc.filter, ModeFilter)
		if err != nil {
			t.Fatalf("%.60s: %v", tc.filter, err)
		}
		if p.tracked != tc.tracked {
			t.Errorf("%.60s: tracked = %v, want %v", tc.filter, p.tracked, tc.tracked)
		}
		for _, text := range []string{long, longer} {
			doc := map[string]any{"title": text, "tags": []any{text}}
			_, err := p.Match(&Env{}, doc)
			var e *Error
			over := errors.As(err, &e) && e.Code == CodeEvalError && strings.Contains(e.Description, "cost limit")
			if want := len(text) == len(longer); over != want || (!over && err != nil) {
				t.Errorf("%.60s on %d bytes: %v; want over the cost limit: %v", tc.filter, len(text), err, want)
			}
		}
	}
}

// TestBadParams checks that missing parameters and parameters that are not
// JSON values are errors naming the parameter and its position.
func TestBadParams(t *testing.T) {
	p, err := Compile(`_type == $t && n > $min`, ModeFilter)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		params map[string]any
		code   string
		start  int
	}{
		{map[string]any{"t": "post"}, CodeParseError, 19},
		{map[string]any{"t": struct{}{}, "min": 1.0}, CodeEvalError, 9},
		{map[string]any{"t": "post", "min": []any{1.0, map[string]any{"x": make(chan int)}}}, CodeEvalError, 19},
	} {
		_, err := p.Match(&Env{Params: tc.params}, map[string]any{"_type": "post", "n": 2.0})
		var e *Error
		if !errors.As(err, &e) || e.Code != tc.code || e.Start != tc.start || !strings.Contains(e.Description, "$") {
			t.Errorf("%v: got %v, want %s at %d", tc.params, err, tc.code, tc.start)
		}
	}
	ok, err := p.Match(&Env{Params: map[string]any{"t": "post", "min": 1}}, map[string]any{"_type": "post", "n": 2.0})
	if !ok || err != nil {
		t.Errorf("int parameter: %v %v, want a match", ok, err)
	}
}
