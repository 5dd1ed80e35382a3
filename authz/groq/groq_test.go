package groq

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestData runs the data-driven tests in testdata/*.txt. Commands:
//
//	dataset            input: NDJSON documents; sets * (and the docs match uses)
//	params             input: a JSON object; sets $params
//	identity id=ID     sets identity()
//	eval [this=JSON]   input: a query (ModeQuery); prints its JSON value or the error
//	match              input: a filter (ModeFilter); prints the _id of each dataset document it matches
//	compile mode=M     input: an expression; prints "ok" and the CEL, or the error
func TestData(t *testing.T) {
	datadriven.Walk(t, "testdata/eval", func(t *testing.T, path string) {
		env := &Env{Now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			switch td.Cmd {
			case "dataset":
				var docs []any
				sc := bufio.NewScanner(strings.NewReader(td.Input))
				for sc.Scan() {
					if strings.TrimSpace(sc.Text()) == "" {
						continue
					}
					var d any
					if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
						t.Fatalf("%s: %v", td.Pos, err)
					}
					docs = append(docs, d)
				}
				env = &Env{Now: env.Now, Identity: env.Identity, Params: env.Params, Dataset: docs}
				return ""
			case "params":
				var p map[string]any
				if err := json.Unmarshal([]byte(td.Input), &p); err != nil {
					t.Fatalf("%s: %v", td.Pos, err)
				}
				env = &Env{Now: env.Now, Identity: env.Identity, Params: p, Dataset: env.Dataset}
				return ""
			case "identity":
				var id string
				td.ScanArgs(t, "id", &id)
				env = &Env{Now: env.Now, Identity: id, Params: env.Params, Dataset: env.Dataset}
				return ""
			case "eval":
				var this any
				if td.HasArg("this") {
					var raw string
					td.ScanArgs(t, "this", &raw)
					if err := json.Unmarshal([]byte(raw), &this); err != nil {
						t.Fatalf("%s: this: %v", td.Pos, err)
					}
				}
				p, err := Compile(td.Input, ModeQuery)
				if err != nil {
					return errString(err)
				}
				v, err := p.Eval(env, this)
				if err != nil {
					return errString(err)
				}
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatalf("%s: %v", td.Pos, err)
				}
				return string(b) + "\n"
			case "match":
				p, err := Compile(td.Input, ModeFilter)
				if err != nil {
					return errString(err)
				}
				var ids []string
				for _, d := range env.Dataset {
					doc, _ := d.(map[string]any)
					ok, err := p.Match(env, doc)
					if err != nil {
						return errString(err)
					}
					if ok {
						ids = append(ids, fmt.Sprint(doc["_id"]))
					}
				}
				return strings.Join(ids, " ") + "\n"
			case "compile":
				mode := ModeQuery
				if td.HasArg("mode") {
					var m string
					td.ScanArgs(t, "mode", &m)
					if m == "filter" {
						mode = ModeFilter
					}
				}
				p, err := Compile(td.Input, mode)
				if err != nil {
					return errString(err)
				}
				return "ok: " + p.CEL() + "\n"
			}
			t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
			return ""
		})
	})
}

func errString(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return "untyped error: " + err.Error() + "\n"
	}
	return fmt.Sprintf("error %s [%d,%d): %s\n", e.Code, e.Start, e.End, e.Description)
}
