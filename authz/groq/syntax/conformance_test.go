package syntax

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// suiteTest is a test case of the GROQ conformance suite.
type suiteTest struct {
	Type  string `json:"_type"`
	ID    string `json:"_id"`
	Name  string `json:"name"`
	Query string `json:"query"`
	Valid bool   `json:"valid"`
}

// findSuite returns the path of the conformance suite, which lives next to
// the repository: <repo>/../shared/groq-test-suite/suite.ndjson, or an
// explanation of why it is not there.
func findSuite() (path, missing string) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err.Error()
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "repository root (go.mod) not found"
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "groq-test-suite", "suite.ndjson")
	if _, err := os.Stat(p); err != nil {
		return "", "suite not found at " + p
	}
	return p, ""
}

// readSuite reads the test cases of the suite at path.
func readSuite(path string) ([]suiteTest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var tests []suiteTest
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		var st suiteTest
		if err := json.Unmarshal(sc.Bytes(), &st); err != nil {
			return nil, err
		}
		if st.Type == "test" {
			tests = append(tests, st)
		}
	}
	return tests, sc.Err()
}

// loadSuite returns the suite's test cases, skipping the test when the
// suite is absent.
func loadSuite(t testing.TB) []suiteTest {
	t.Helper()
	path, missing := findSuite()
	if missing != "" {
		t.Skipf("GROQ conformance suite unavailable (%s); skipping", missing)
	}
	tests, err := readSuite(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return tests
}

// semanticRejections are the valid:false tests whose queries are
// syntactically valid GROQ and are rejected by a later stage, with the
// reason. Parse must accept them; the list is checked both ways.
var semanticRejections = map[string]string{
	"$p == 42": paramReason,
	"$p":       paramReason,
}

const paramReason = "the parameter $p is not provided: parameters are known only when the query is evaluated, so Parse cannot tell; the evaluator (authz/groq) must reject a query that uses a parameter missing from Env.Params with queryParseError, as Sanity does"

func TestConformance(t *testing.T) {
	tests := loadSuite(t)
	var parsed, rejected, excepted int
	for _, st := range tests {
		n, err := Parse(st.Query)
		if err == nil {
			checkRoundTrip(t, st.Query, n)
			checkSpans(t, st.Query, n)
		} else {
			var e *Error
			if !errors.As(err, &e) || e.Code != "queryParseError" {
				t.Errorf("%s %q: error %v is not a *Error with code queryParseError", st.Name, st.Query, err)
			}
		}
		reason, isException := semanticRejections[st.Query]
		switch {
		case st.Valid && err == nil:
			parsed++
		case st.Valid:
			t.Errorf("valid test %q rejected: %q: %v", st.Name, st.Query, err)
		case isException && err == nil:
			excepted++
			t.Logf("left to a later stage: %q (%s): %s", st.Query, st.Name, reason)
		case isException:
			t.Errorf("test %q listed as a semantic rejection (%s) but Parse rejects it: %v", st.Name, reason, err)
		case err != nil:
			rejected++
		default:
			t.Errorf("invalid test %q accepted: %q", st.Name, st.Query)
		}
	}
	t.Logf("conformance: %d valid queries parsed, %d invalid queries rejected, %d invalid queries left to later stages, %d tests", parsed, rejected, excepted, len(tests))
}
