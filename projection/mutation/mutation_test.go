package mutation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// fakeView is the View of the data-driven tests: documents given by the
// "docs" command, query selections given by the "select" command. It keeps
// the JSON of its documents to check that Apply never modifies them.
type fakeView struct {
	docs    map[string]map[string]any
	json    map[string]string
	selects map[string][]string
}

type queryError struct{ query string }

func (e *queryError) Error() string     { return "cannot evaluate query " + e.query }
func (e *queryError) ErrorCode() string { return "queryEvalError" }

func (v *fakeView) Get(id string) (map[string]any, bool, error) {
	d, ok := v.docs[id]
	return d, ok, nil
}

func (v *fakeView) Select(query string, params map[string]any) ([]string, error) {
	ids, ok := v.selects[query]
	if !ok {
		return nil, &queryError{query}
	}
	return ids, nil
}

func (v *fakeView) put(t testing.TB, doc map[string]any) {
	id := doc["_id"].(string)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	v.docs[id] = doc
	v.json[id] = string(b)
}

func (v *fakeView) checkUnmodified(t testing.TB) {
	t.Helper()
	for id, doc := range v.docs {
		b, _ := json.Marshal(doc)
		if string(b) != v.json[id] {
			t.Fatalf("Apply modified the View's document %s:\nwas %s\nnow %s", id, v.json[id], b)
		}
	}
}

func newFakeView() *fakeView {
	return &fakeView{docs: map[string]map[string]any{}, json: map[string]string{}, selects: map[string][]string{}}
}

var testNow = time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.FixedZone("X", 3600))

func errorJSON(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		if c, ok := err.(interface{ ErrorCode() string }); ok {
			return fmt.Sprintf("error (passed through): %s: %v", c.ErrorCode(), err)
		}
		return fmt.Sprintf("unexpected error type %T: %v", err, err)
	}
	m := map[string]any{"code": e.Code, "index": e.Index, "description": e.Description}
	if e.ID != "" {
		m["id"] = e.ID
	}
	if e.Details != nil {
		m["details"] = e.Details
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(m)
	return "error:\n" + buf.String()
}

func marshal(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/apply", func(t *testing.T, path string) {
		view := newFakeView()
		gen := 0
		newID = func() string { gen++; return fmt.Sprintf("gen%d", gen) }
		defer func() { newID = defaultNewID }()
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			switch td.Cmd {
			case "docs":
				// One document per line; replaces the View's documents.
				view = newFakeView()
				for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
					if line = strings.TrimSpace(line); line == "" {
						continue
					}
					var doc map[string]any
					if err := json.Unmarshal([]byte(line), &doc); err != nil {
						td.Fatalf(t, "bad document %s: %v", line, err)
					}
					view.put(t, doc)
				}
				return fmt.Sprintf("%d documents", len(view.docs))
			case "select":
				// select QUERY-NAME: the ids, one per line (none: empty).
				query := td.CmdArgs[0].Key
				view.selects[query] = []string{}
				for _, line := range strings.Fields(td.Input) {
					view.selects[query] = append(view.selects[query], line)
				}
				return "ok"
			case "apply":
				ctx := Context{TxID: "tx1", Now: testNow, MaxDocumentSize: 0}
				td.MaybeScanArgs(t, "tx", &ctx.TxID)
				td.MaybeScanArgs(t, "max", &ctx.MaxDocumentSize)
				tx, err := DecodeTransaction([]byte(td.Input))
				if err != nil {
					return errorJSON(err)
				}
				out, err := Apply(ctx, view, tx)
				view.checkUnmodified(t)
				if err != nil {
					return errorJSON(err)
				}
				var sb strings.Builder
				sb.WriteString("results:\n")
				for _, r := range out.Results {
					fmt.Fprintf(&sb, "  %s %s\n", r.Operation, r.ID)
					if td.HasArg("documents") {
						fmt.Fprintf(&sb, "    %s\n", marshal(r.Document))
					}
				}
				sb.WriteString("effects:\n")
				for _, e := range out.Effects {
					before := "absent"
					if e.Before != nil {
						before = fmt.Sprintf("rev %v", e.Before["_rev"])
					}
					fmt.Fprintf(&sb, "  %s %s (before: %s)\n", e.Operation, e.ID, before)
					if e.After != nil {
						fmt.Fprintf(&sb, "    %s\n", marshal(e.After))
					}
				}
				if td.HasArg("commit") {
					for _, e := range out.Effects {
						if e.After == nil {
							delete(view.docs, e.ID)
							delete(view.json, e.ID)
						} else {
							view.put(t, e.After)
						}
					}
				}
				return sb.String()
			}
			td.Fatalf(t, "unknown command %s", td.Cmd)
			return ""
		})
	})
}

var defaultNewID = newID

func TestDecodeDataDriven(t *testing.T) {
	datadriven.RunTest(t, "testdata/decode", func(t *testing.T, td *datadriven.TestData) string {
		switch td.Cmd {
		case "decode":
			tx, err := DecodeTransaction([]byte(td.Input))
			if err != nil {
				return errorJSON(err)
			}
			return describeTx(tx)
		case "path":
			var sb strings.Builder
			for _, line := range strings.Split(td.Input, "\n") {
				p, err := ParsePath(line)
				if err != nil {
					fmt.Fprintf(&sb, "%s\n  %s", line, errorJSON(err))
					continue
				}
				fmt.Fprintf(&sb, "%s\n  %s\n", line, describePath(p))
			}
			return sb.String()
		}
		td.Fatalf(t, "unknown command %s", td.Cmd)
		return ""
	})
}

func describePath(p Path) string {
	var parts []string
	for _, s := range p.segs {
		switch s.kind {
		case segAttr:
			parts = append(parts, fmt.Sprintf("attr(%q)", s.name))
		case segIndex:
			parts = append(parts, fmt.Sprintf("index(%d)", s.index))
		case segKey:
			parts = append(parts, fmt.Sprintf("key(%q)", s.name))
		case segAll:
			parts = append(parts, "all")
		case segSlice:
			from, to := "", ""
			if s.hasFrom {
				from = fmt.Sprint(s.from)
			}
			if s.hasTo {
				to = fmt.Sprint(s.to)
			}
			parts = append(parts, fmt.Sprintf("slice(%s:%s)", from, to))
		}
	}
	return strings.Join(parts, " ")
}

func describeTx(tx *Transaction) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "transactionId=%q dryRun=%v returnIds=%v returnDocuments=%v\n", tx.TransactionID, tx.DryRun, tx.ReturnIDs, tx.ReturnDocuments)
	for i, m := range tx.Mutations {
		fmt.Fprintf(&sb, "%d: %s", i, m.Kind)
		if m.Document != nil {
			fmt.Fprintf(&sb, " %s", marshal(m.Document))
		}
		if m.ID != "" {
			fmt.Fprintf(&sb, " id=%s", m.ID)
		}
		if m.Query != "" {
			fmt.Fprintf(&sb, " query=%q params=%s", m.Query, marshal(m.Params))
		}
		sb.WriteString("\n")
		if p := m.Patch; p != nil {
			if p.IfRevisionID != "" {
				fmt.Fprintf(&sb, "   ifRevisionID %s\n", p.IfRevisionID)
			}
			for _, g := range []struct {
				name string
				ops  []Op
			}{{"set", p.Set}, {"setIfMissing", p.SetIfMissing}, {"inc", p.Inc}, {"dec", p.Dec}, {"diffMatchPatch", p.DiffMatchPatch}} {
				for _, op := range g.ops {
					fmt.Fprintf(&sb, "   %s %s = %s\n", g.name, op.Path, marshal(op.Value))
				}
			}
			for _, path := range p.Unset {
				fmt.Fprintf(&sb, "   unset %s\n", path)
			}
			if p.Insert != nil {
				fmt.Fprintf(&sb, "   insert %s %s %s\n", p.Insert.Position, p.Insert.Path, marshal(p.Insert.Items))
			}
		}
	}
	return sb.String()
}

// TestErrorAccessors checks what the engine reads from an *Error.
func TestErrorAccessors(t *testing.T) {
	_, err := DecodeTransaction([]byte(`{"mutations":[{"create":{"_type":"t"}},{"patch":{"id":"a","set":{"a..b":1}}}]}`))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	if i, ok := e.MutationIndex(); !ok || i != 1 {
		t.Errorf("MutationIndex = %d, %v", i, ok)
	}
	if e.ErrorCode() != CodeInvalidPatchPath || e.Describe() == "" || e.ErrorDetails()["position"] != 2 {
		t.Errorf("error = %+v", e)
	}
	if !strings.HasPrefix(e.Error(), "invalidPatchPath: mutation 1: ") {
		t.Errorf("Error() = %q", e.Error())
	}
	_, err = DecodeTransaction([]byte(`[]`))
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	if _, ok := e.MutationIndex(); ok || e.Code != CodeMalformedTransaction {
		t.Errorf("error = %+v", e)
	}
}

func TestUTF16Offsets(t *testing.T) {
	tests := []struct {
		s    string
		u    int
		want int
	}{
		{"abc", 0, 0}, {"abc", 2, 2}, {"abc", 9, 3},
		{"é", 1, 2}, {"日本", 1, 3},
		{"😀x", 1, 0}, // inside the surrogate pair: back to the character
		{"😀x", 2, 4}, {"😀x", 3, 5},
	}
	for _, tt := range tests {
		if got := utf16ToByte(tt.s, tt.u); got != tt.want {
			t.Errorf("utf16ToByte(%q, %d) = %d, want %d", tt.s, tt.u, got, tt.want)
		}
	}
}

func TestApplyOrderOfResultsIsStable(t *testing.T) {
	// Effects come in first-written order, whatever the map order.
	view := newFakeView()
	var muts []string
	for i := 0; i < 50; i++ {
		muts = append(muts, fmt.Sprintf(`{"create":{"_id":"d%02d","_type":"t"}}`, 49-i))
	}
	tx, err := DecodeTransaction([]byte(`{"mutations":[` + strings.Join(muts, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Apply(Context{TxID: "x", Now: testNow}, view, tx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range out.Effects {
		ids = append(ids, e.ID)
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	slices.Reverse(want)
	if !slices.Equal(ids, want) || len(ids) != 50 {
		t.Fatalf("effects order = %v", ids)
	}
}
