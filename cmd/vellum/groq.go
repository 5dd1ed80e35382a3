package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum/authz/groq"
)

var (
	groqIdentity string
	groqParams   []string
	groqNow      string
)

var groqCmd = &cobra.Command{
	Use:   "groq",
	Short: "Evaluate and check GROQ filters offline (no daemon)",
	Long: `groq evaluates GROQ expressions and checks grant filters on this machine,
through the same compiled CEL programs that vellumd runs for grants and
listener filters.`,
}

var groqEvalCmd = &cobra.Command{
	Use:   "eval EXPR",
	Short: "Evaluate EXPR on each JSON value read from standard input",
	Long: `eval compiles EXPR as a filter (as grants are) and reads JSON values from
standard input, one a line (NDJSON). For each it prints one line: the JSON value
of EXPR with that value as the current object @. Blank lines are skipped.

identity() is --identity; $NAME is the JSON value given by --param NAME=JSON;
now() is --now (RFC 3339), by default the time the command starts.`,
	Example: `  echo '{"_id":"drafts.a","_type":"post"}' | vellum groq eval '_id in path("drafts.**")'
  echo '{"author":"alice"}' | vellum groq eval --identity alice 'author == identity()'
  echo '{"n":3}' | vellum groq eval --param min=2 'n >= $min'`,
	Args: groqOneExpr,
	RunE: runGroqEval,
}

var groqCheckCmd = &cobra.Command{
	Use:   "check EXPR",
	Short: "Say whether EXPR is valid as a grant filter and print its CEL",
	Long: `check compiles EXPR as a grant filter. When it is valid, check prints the CEL
program it compiles to; when it is not, it says where and why, with a caret
under the offending text, and exits with status 1.`,
	Example: `  vellum groq check '_type == "post" && author == identity()'
  vellum groq check '*[_type == "post"]'`,
	Args: groqOneExpr,
	RunE: runGroqCheck,
}

func init() {
	f := groqEvalCmd.Flags()
	f.StringVar(&groqIdentity, "identity", "", "the caller's identity id, the value of identity()")
	f.StringArrayVar(&groqParams, "param", nil, "a parameter: NAME=JSON sets $NAME (repeatable)")
	f.StringVar(&groqNow, "now", "", "the value of now(), RFC 3339 (default: the current time)")
	groqCmd.AddCommand(groqEvalCmd, groqCheckCmd)
	rootCmd.AddCommand(groqCmd)
}

func groqOneExpr(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError{fmt.Errorf("%s needs exactly one GROQ expression, got %d arguments (quote the expression)", cmd.CommandPath(), len(args))}
	}
	return nil
}

var groqParamName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// groqParseParams turns NAME=JSON flags into the parameter map.
func groqParseParams(flags []string) (map[string]any, error) {
	params := make(map[string]any, len(flags))
	for _, p := range flags {
		name, text, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("--param %q: want NAME=JSON, e.g. --param ids='[\"a\",\"b\"]'", p)
		}
		name = strings.TrimPrefix(name, "$")
		if !groqParamName.MatchString(name) {
			return nil, fmt.Errorf("--param %q: %q is not a parameter name (letters, digits and _, not starting with a digit)", p, name)
		}
		if _, dup := params[name]; dup {
			return nil, fmt.Errorf("--param %q: $%s is given twice", p, name)
		}
		v, err := groqDecodeOne([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("--param %s: the value %q is not JSON: %v (a string needs quotes: %s='\"text\"')", name, text, err, name)
		}
		params[name] = v
	}
	return params, nil
}

// groqDecodeOne decodes exactly one JSON value from data.
func groqDecodeOne(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no value")
		}
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("more than one value (at offset %d)", dec.InputOffset())
	}
	return v, nil
}

func runGroqEval(cmd *cobra.Command, args []string) error {
	params, err := groqParseParams(groqParams)
	if err != nil {
		return usageError{err}
	}
	now := time.Now().UTC()
	if groqNow != "" {
		if now, err = time.Parse(time.RFC3339Nano, groqNow); err != nil {
			return usageError{fmt.Errorf("--now %q: not an RFC 3339 time such as 2026-01-02T03:04:05Z", groqNow)}
		}
	}
	p, err := groq.Compile(args[0], groq.ModeFilter)
	if err != nil {
		fmt.Fprint(cmd.ErrOrStderr(), groqDescribe(args[0], err))
		return exitError{1}
	}
	env := &groq.Env{Identity: groqIdentity, Now: now, Params: params}

	in := bufio.NewReaderSize(cmd.InOrStdin(), 1<<16)
	out := bufio.NewWriter(cmd.OutOrStdout())
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for n := 1; ; n++ {
		line, rerr := in.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return fmt.Errorf("reading standard input at line %d: %w", n, rerr)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			v, err := groqDecodeOne(line)
			if err != nil {
				return fmt.Errorf("standard input line %d: not a JSON value: %v", n, err)
			}
			result, err := p.Eval(env, v)
			if err != nil {
				return fmt.Errorf("standard input line %d: %w", n, err)
			}
			if err := enc.Encode(result); err != nil {
				return fmt.Errorf("standard input line %d: the result %v is not JSON: %w", n, result, err)
			}
		}
		if rerr != nil {
			return nil
		}
	}
}

func runGroqCheck(cmd *cobra.Command, args []string) error {
	w := cmd.OutOrStdout()
	p, err := groq.Compile(args[0], groq.ModeFilter)
	if err != nil {
		fmt.Fprint(w, "invalid grant filter\n"+groqDescribe(args[0], err))
		return exitError{1}
	}
	fmt.Fprintf(w, "valid grant filter\nCEL: %s\n", p.CEL())
	return nil
}

// groqDescribe says what is wrong with expr and shows where: the line of expr
// holding the error with carets under the offending characters.
func groqDescribe(expr string, err error) string {
	var ge *groq.Error
	if !errors.As(err, &ge) {
		return err.Error() + "\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s at character %d: %s\n", ge.Code, ge.Start, ge.Description)
	b.WriteString(groqCaret(expr, ge.Start, ge.End))
	return b.String()
}

// groqCaret renders the line of expr that holds the character offset start,
// indented, and a line of carets under characters [start, end). Offsets are
// in characters (code points), as GROQ errors give them.
func groqCaret(expr string, start, end int) string {
	runes := []rune(expr)
	start = max(0, min(start, len(runes)))
	end = max(start, min(end, len(runes)))
	lineStart := start
	for lineStart > 0 && runes[lineStart-1] != '\n' {
		lineStart--
	}
	lineEnd := start
	for lineEnd < len(runes) && runes[lineEnd] != '\n' {
		lineEnd++
	}
	var b strings.Builder
	b.WriteString("  " + string(runes[lineStart:lineEnd]) + "\n  ")
	for _, r := range runes[lineStart:start] {
		if r == '\t' {
			b.WriteByte('\t') // keep the alignment of tabs
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteString(strings.Repeat("^", max(1, min(end, lineEnd)-start)) + "\n")
	return b.String()
}
