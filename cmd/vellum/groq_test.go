package main

import (
	"strings"
	"testing"
)

func TestGroqEval(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stdin  string
		stdout string
	}{{
		name:   "path match per line, blank lines skipped",
		args:   []string{`_id in path("drafts.**")`},
		stdin:  "{\"_id\":\"drafts.a\"}\n\n{\"_id\":\"a\"}\n{\"_id\":\"drafts.a.b\"}\n{}\n",
		stdout: "true\nfalse\ntrue\nnull\n",
	}, {
		name:   "identity",
		args:   []string{"--identity", "alice", "author == identity()"},
		stdin:  `{"author":"alice"}` + "\n" + `{"author":"bob"}` + "\n{}",
		stdout: "true\nfalse\nfalse\n",
	}, {
		name:   "no identity is the empty string",
		args:   []string{"identity()"},
		stdin:  "{}\n",
		stdout: "\"\"\n",
	}, {
		name:   "parameters of several types",
		args:   []string{"--param", "min=2", "--param", `types=["post","page"]`, "n >= $min && _type in $types"},
		stdin:  `{"n":3,"_type":"post"}` + "\n" + `{"n":1,"_type":"post"}` + "\n" + `{"n":"x","_type":"post"}` + "\n" + `{"n":3,"_type":"author"}` + "\n",
		stdout: "true\nfalse\nnull\nfalse\n",
	}, {
		name:   "values, not only booleans",
		args:   []string{`lower(title) + "!"`},
		stdin:  `{"title":"ÉCOLE"}` + "\n" + `{"title":3}` + "\n" + `{"title":"<a&b>"}` + "\n",
		stdout: "\"école!\"\nnull\n\"<a&b>!\"\n",
	}, {
		name:   "counts and elements",
		args:   []string{`count(tags) + length(tags[-1])`},
		stdin:  `{"tags":["a","bcd"]}` + "\n" + `{"tags":"x"}` + "\n",
		stdout: "5\nnull\n",
	}, {
		name:   "@ can be any value",
		args:   []string{`@ * 2`},
		stdin:  "1.25\n\"a\"\n-4\n",
		stdout: "2.5\nnull\n-8\n",
	}, {
		name:   "now is --now",
		args:   []string{"--now", "2026-01-02T03:04:05Z", `now() > "2026-01-01" && now() < "2026-01-03"`},
		stdin:  "{}\n",
		stdout: "true\n",
	}, {
		name:   "no input, no output",
		args:   []string{"true"},
		stdin:  "",
		stdout: "",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, status := runCommand(t, tt.stdin, append([]string{"groq", "eval"}, tt.args...)...)
			if status != 0 || stderr != "" {
				t.Fatalf("status %d, stderr %q", status, stderr)
			}
			if stdout != tt.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tt.stdout)
			}
		})
	}
}

func TestGroqEvalErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stdin  string
		status int
		stdout string   // printed before the error
		stderr []string // substrings of the error output
	}{{
		name:   "param value that is not JSON",
		args:   []string{"--param", "min=abc", "n > $min"},
		status: 2,
		stderr: []string{"--param min", `"abc" is not JSON`},
	}, {
		name:   "param without a value",
		args:   []string{"--param", "min", "n > $min"},
		status: 2,
		stderr: []string{`--param "min"`, "NAME=JSON"},
	}, {
		name:   "param with a bad name",
		args:   []string{"--param", "1x=1", "true"},
		status: 2,
		stderr: []string{`"1x" is not a parameter name`},
	}, {
		name:   "param with two values",
		args:   []string{"--param", "a=1 2", "true"},
		status: 2,
		stderr: []string{"--param a", "more than one value"},
	}, {
		name:   "bad --now",
		args:   []string{"--now", "yesterday", "true"},
		status: 2,
		stderr: []string{`--now "yesterday"`, "RFC 3339"},
	}, {
		name:   "bad input line, after good ones",
		args:   []string{"a"},
		stdin:  "{\"a\":1}\n\n{bad\n{\"a\":2}\n",
		status: 1,
		stdout: "1\n",
		stderr: []string{"standard input line 3", "not a JSON value"},
	}, {
		name:   "two values on a line",
		args:   []string{"a"},
		stdin:  `{"a":1} {"a":2}`,
		status: 1,
		stderr: []string{"standard input line 1", "more than one value"},
	}, {
		name:   "syntax error",
		args:   []string{`_type == "post" &&`},
		status: 1,
		stderr: []string{"queryParseError", `  _type == "post" &&`},
	}, {
		name:   "not allowed in a filter",
		args:   []string{`defined(*[_id == "x"])`},
		status: 1,
		stderr: []string{"invalidFilter", "  defined(*[_id == \"x\"])\n          ^"},
	}, {
		name:   "no expression",
		args:   []string{},
		status: 2,
		stderr: []string{"needs exactly one GROQ expression, got 0"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, status := runCommand(t, tt.stdin, append([]string{"groq", "eval"}, tt.args...)...)
			if status != tt.status {
				t.Errorf("status %d, want %d (stderr %q)", status, tt.status, stderr)
			}
			if stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", stdout, tt.stdout)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr does not say %q:\n%s", s, stderr)
				}
			}
		})
	}
}

func TestGroqCheck(t *testing.T) {
	t.Run("valid", func(t *testing.T) {
		stdout, stderr, status := runCommand(t, "", "groq", "check", `_type == "post" && author == identity()`)
		if status != 0 || stderr != "" {
			t.Fatalf("status %d, stderr %q", status, stderr)
		}
		cel, ok := strings.CutPrefix(stdout, "valid grant filter\nCEL: ")
		if !ok || strings.TrimSpace(cel) == "" || strings.Count(stdout, "\n") != 2 {
			t.Fatalf("stdout %q, want the verdict and a line with the CEL", stdout)
		}
	})
	invalid := []struct {
		name, expr string
		code       string
		at         string // the text the caret must start under
	}{
		{"everything", `_type == "post" && count(*) > 1`, "invalidFilter", "*"},
		{"subquery", `defined(*[_id == "x"])`, "invalidFilter", "*"},
		{"dereference", `author->name == "x"`, "invalidFilter", "author->"},
		{"parent", `^._id == _id`, "invalidFilter", "^"},
		{"syntax", `_type == "post" && (`, "queryParseError", ""},
		{"second line", "_type == \"post\" &&\n\tcount(*) > 1", "invalidFilter", "*"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, status := runCommand(t, "", "groq", "check", tt.expr)
			if status != 1 {
				t.Errorf("status %d, want 1", status)
			}
			lines := strings.Split(stdout, "\n")
			if len(lines) != 5 || lines[0] != "invalid grant filter" || !strings.HasPrefix(lines[1], tt.code+" at character ") {
				t.Fatalf("stdout:\n%s\nwant the verdict, %s and where, the line and a caret", stdout, tt.code)
			}
			if tt.at == "" {
				return
			}
			// The caret stands under the offending construct.
			line, caret := lines[2], lines[3]
			col := strings.Index(caret, "^")
			if col < 0 || !strings.HasPrefix(line[col:], tt.at) {
				t.Errorf("caret not under %q:\n%s\n%s", tt.at, line, caret)
			}
		})
	}
}

func TestGroqCaret(t *testing.T) {
	tests := []struct {
		expr       string
		start, end int
		want       string
	}{
		{"a == *", 5, 6, "  a == *\n       ^\n"},
		{"a == *", 0, 1, "  a == *\n  ^\n"},
		{"a -> b", 2, 4, "  a -> b\n    ^^\n"},
		{"a ==", 4, 4, "  a ==\n      ^\n"},                 // at the end: one caret
		{"ab", 9, 12, "  ab\n    ^\n"},                      // clamped
		{"é == *", 5, 6, "  é == *\n       ^\n"},            // characters, not bytes
		{"a &&\n\tb -> c", 8, 10, "  \tb -> c\n  \t  ^^\n"}, // the line of the error, tabs kept
		{"a &&\nb(\nc", 6, 9, "  b(\n   ^\n"},               // carets stop at the line's end
	}
	for _, tt := range tests {
		if got := groqCaret(tt.expr, tt.start, tt.end); got != tt.want {
			t.Errorf("groqCaret(%q, %d, %d):\n%q\nwant\n%q", tt.expr, tt.start, tt.end, got, tt.want)
		}
	}
}
