package mutation

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

var knownCodes = map[string]bool{
	CodeMalformedTransaction: true, CodeUnknownMutation: true, CodeInvalidDocumentID: true,
	CodeDocumentNotFound: true, CodeRevisionIDDoesNotMatch: true, CodeDocumentAlreadyExists: true,
	CodeTypeMismatch: true, CodeInvalidPatchPath: true, CodeInvalidPatch: true, CodeDocumentTooLarge: true,
}

// seedInputs returns the inputs of the apply and decode commands of the
// data-driven files, so the fuzzers start from every reviewed case.
func seedInputs(t testing.TB, cmds ...string) []string {
	var files []string
	for _, pattern := range []string{"testdata/apply/*.txt", "testdata/decode"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i++ {
			cmd := strings.Fields(lines[i])
			if len(cmd) == 0 || !contains(cmds, cmd[0]) {
				continue
			}
			var in []string
			for i++; i < len(lines) && lines[i] != "----"; i++ {
				in = append(in, lines[i])
			}
			out = append(out, in...)
		}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func fuzzView() *fakeView {
	v := newFakeView()
	var doc map[string]any
	_ = json.Unmarshal([]byte(`{"_id":"a","_type":"post","_rev":"r0","_createdAt":"2020-01-01T00:00:00Z","title":"Hello","n":1,"tags":["x","y"],"body":[{"_key":"k1","text":"one","children":[1,2]},{"_key":"k2","text":"two"}],"meta":{"views":10,"author":{"name":"Ann"}},"empty":[]}`), &doc)
	v.put(nil, doc)
	v.selects["*"] = []string{"a", "b"}
	return v
}

func FuzzDecodeTransaction(f *testing.F) {
	for _, s := range seedInputs(f, "apply", "decode") {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := DecodeTransaction(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !knownCodes[e.Code] || e.Description == "" {
				t.Fatalf("decode error %#v is not a described *Error with a known code", err)
			}
			if e.Index < -1 || e.Index >= MaxMutations {
				t.Fatalf("decode error index %d out of range", e.Index)
			}
			return
		}
		if len(tx.Mutations) == 0 {
			t.Fatal("decoded a transaction without mutations")
		}
		view := fuzzView()
		out, err := Apply(Context{TxID: "tx", Now: testNow, MaxDocumentSize: 1 << 16}, view, tx)
		view.checkUnmodified(t)
		if err != nil {
			var e *Error
			var q *queryError
			if errors.As(err, &q) {
				return
			}
			if !errors.As(err, &e) || !knownCodes[e.Code] || e.Index < 0 || e.Index >= len(tx.Mutations) {
				t.Fatalf("apply error %#v is not an *Error naming a mutation", err)
			}
			return
		}
		for _, e := range out.Effects {
			if e.After == nil {
				continue
			}
			if e.After["_rev"] != "tx" || e.After["_id"] != e.ID {
				t.Fatalf("effect %s has _id %v and _rev %v", e.ID, e.After["_id"], e.After["_rev"])
			}
			b, err := json.Marshal(e.After)
			if err != nil || len(b) > 1<<16 {
				t.Fatalf("effect %s: %d bytes, %v", e.ID, len(b), err)
			}
			if n, ok := jsonSize(e.After); !ok || n != len(b) {
				t.Fatalf("effect %s: jsonSize %d, %v; json.Marshal %d bytes", e.ID, n, ok, len(b))
			}
		}
	})
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// formatPath writes parsed segments in one canonical spelling.
func formatPath(p Path) string {
	var sb strings.Builder
	for _, s := range p.segs {
		switch s.kind {
		case segAttr:
			fmt.Fprintf(&sb, "[%s]", jsonQuote(s.name))
		case segIndex:
			fmt.Fprintf(&sb, "[%d]", s.index)
		case segKey:
			fmt.Fprintf(&sb, "[_key==%s]", jsonQuote(s.name))
		case segAll:
			sb.WriteString("[*]")
		case segSlice:
			sb.WriteByte('[')
			if s.hasFrom {
				sb.WriteString(strconv.Itoa(s.from))
			}
			sb.WriteByte(':')
			if s.hasTo {
				sb.WriteString(strconv.Itoa(s.to))
			}
			sb.WriteByte(']')
		}
	}
	return sb.String()
}

func FuzzParsePath(f *testing.F) {
	for _, s := range seedInputs(f, "path") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidPatchPath {
				t.Fatalf("ParsePath(%q) error %#v is not invalidPatchPath", s, err)
			}
			pos, ok := e.Details["position"].(int)
			if !ok || pos < 0 || pos > len(s) {
				t.Fatalf("ParsePath(%q) error position %v out of range", s, e.Details["position"])
			}
			return
		}
		if p.String() != s || len(p.segs) == 0 {
			t.Fatalf("ParsePath(%q) = %q with %d segments", s, p.String(), len(p.segs))
		}
		// Quoted names may hold anything, so the canonical spelling
		// must parse back to the same segments (if it fits the limit).
		canon := formatPath(p)
		if len(canon) > MaxPathLength {
			return
		}
		q, err := ParsePath(canon)
		if err != nil {
			t.Fatalf("ParsePath(%q) ok, but its canonical form %q fails: %v", s, canon, err)
		}
		if !reflect.DeepEqual(p.segs, q.segs) {
			t.Fatalf("ParsePath(%q) = %+v, canonical %q = %+v", s, p.segs, canon, q.segs)
		}
	})
}

func FuzzDiffMatchPatch(f *testing.F) {
	f.Add("Hello", "@@ -1,5 +1,11 @@\n Hello\n+ world\n")
	f.Add("😀😀😀😀x x x x", "@@ -5,11 +5,11 @@\n %F0%9F%98%80%F0%9F%98%80x x \n-x\n+y\n  x\n")
	f.Add("The quick brown fox jumps over the lazy dog.", "@@ -1,9 +1,9 @@\n The \n-q\n+Q\n uick\n@@ -37,8 +37,9 @@\n azy \n-dog.\n+cat!!\n")
	f.Add("a😀b", "@@ -1,4 +1,2 @@\n a\n-%F0%9F%98%80\n b\n")
	f.Fuzz(func(t *testing.T, text, patch string) {
		ps, err := parseDMP(patch)
		if err != nil {
			return
		}
		out, err := applyDMP(ps, text)
		if err == nil && !utf8.ValidString(out) && utf8.ValidString(text) {
			t.Fatalf("applyDMP(%q, %q) = %q: not UTF-8", text, patch, out)
		}
	})
}
