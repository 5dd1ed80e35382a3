package syntax

import (
	"errors"
	"strings"
	"testing"
)

// TestParse checks the tree of each construct, printed by Dump.
func TestParse(t *testing.T) {
	tests := []struct{ query, tree string }{
		// Literals.
		{`null`, `null`},
		{`true`, `true`},
		{`false`, `false`},
		{`42`, `42`},
		{`3.25`, `3.25`},
		{`1e3`, `1000`},
		{`2.5E-3`, `0.0025`},
		{`1e+2`, `100`},
		{`1e999`, `1e999`},
		{`"a\"b"`, `"a\"b"`},
		{`'it\'s'`, `"it's"`},
		{`"\\ \/ \b\f\n\r\t"`, `"\\ / \u0008\u000c\n\r\t"`},
		{`"\u00e9"`, `"é"`},
		{`"\uD83D\uDE00"`, `"😀"`},
		{`"\u{1F600}"`, `"😀"`},
		{`"\u{41}"`, `"A"`},
		{"'line\nbreak'", `"line\nbreak"`},
		{`"é // not a comment"`, `"é // not a comment"`},
		// Arrays and objects.
		{`[]`, `(array)`},
		{`[1, "a", [true],]`, `(array 1 "a" (array true))`},
		{`[...a, b]`, `(array (... a) b)`},
		{`{}`, `(object)`},
		{`{"a": 1, 'b': 2,}`, `(object ("a" 1) ("b" 2))`},
		{`{name}`, `(object (name name))`},
		{`{...}`, `(object (... @))`},
		{`{..., "a": 1}`, `(object (... @) ("a" 1))`},
		{`{...a.b}`, `(object (... (. a b)))`},
		{`{_type == "x" => {a}}`, `(object (=> (== _type "x") (object (a a))))`},
		{`{a[0]}`, `(object (a (elem a 0)))`},
		{`{a[x > 1]}`, `(object (a (filter a (> x 1))))`},
		{`{a[0..2]}`, `(object (a (slice a 0 2)))`},
		{`{a{b}}`, `(object (a (project a (object (b b)))))`},
		{`{a[].b}`, `(object (a (. ([] a) b)))`},
		{`{a->}`, `(object (a (-> a)))`},
		{`{(a)}`, `(object (a (group a)))`},
		{`{a | order(b)}`, `(object (a (| a order b)))`},
		// Simple expressions.
		{`*`, `*`},
		{`@`, `@`},
		{`^`, `(^ 1)`},
		{`^.^`, `(^ 2)`},
		{`^.^.^.name`, `(. (^ 3) name)`},
		{`$name`, `$name`},
		{`_id`, `_id`},
		{`(1)`, `(group 1)`},
		{`(a, b.c)`, `(tuple a (. b c))`},
		// Traversals.
		{`a.b.c`, `(. (. a b) c)`},
		{`a["b c"]`, `(. a b c)`},
		{`a["b" + "c"]`, `(. a bc)`},
		{`a[0]`, `(elem a 0)`},
		{`a[-1]`, `(elem a (- 1))`},
		{`a[(1 + 1) * 2]`, `(elem a (* (group (+ 1 1)) 2))`},
		{`a[0..2]`, `(slice a 0 2)`},
		{`a[0...2]`, `(slice... a 0 2)`},
		{`a[$from...$to]`, `(slice... a $from $to)`},
		{`a[-3..-1]`, `(slice a (- 3) (- 1))`},
		{`a[]`, `([] a)`},
		{`a[][]`, `([] ([] a))`},
		{`a[b > 1]`, `(filter a (> b 1))`},
		{`a[$p]`, `(filter a $p)`},
		{`a[true]`, `(filter a true)`},
		{`a[1 / 0]`, `(filter a (/ 1 0))`},
		{`a{b}`, `(project a (object (b b)))`},
		{`a | {b}`, `(project a (object (b b)))`},
		{`a->`, `(-> a)`},
		{`a->b`, `(. (-> a) b)`},
		{`a[]->b.c`, `(. (. (-> ([] a)) b) c)`},
		{`*[_type == "post"].title`, `(. (filter * (== _type "post")) title)`},
		{`*[_type == "post"]{title, "author": author->name}[0...10]`,
			`(slice... (project (filter * (== _type "post")) (object (title title) ("author" (. (-> author) name)))) 0 10)`},
		{`*[references(^._id)]`, `(filter * (global::references (. (^ 1) _id)))`},
		// Function calls and pipes.
		{`count(*)`, `(global::count *)`},
		{`global::count(a)`, `(global::count a)`},
		{`string::startsWith(a, "x")`, `(string::startsWith a "x")`},
		{`array::join(tags, ",")`, `(array::join tags ",")`},
		{`math::sum(a)`, `(math::sum a)`},
		{`pt::text(body)`, `(pt::text body)`},
		{`dateTime::now()`, `(dateTime::now)`},
		{`now()`, `(global::now)`},
		{`coalesce()`, `(global::coalesce)`},
		{`round(1.5, 1)`, `(global::round 1.5 1)`},
		{`select(a => 1, b => 2, 3)`, `(global::select (=> a 1) (=> b 2) 3)`},
		{`select(a || b => 1)`, `(global::select (=> (|| a b) 1))`},
		{`diff::changedAny(a, b, (x, y.z[], w[q == 1], v.(s, t)))`,
			`(diff::changedAny a b (tuple x ([] (. y z)) (filter w (== q 1)) (nested v (tuple s t))))`},
		{`diff::changedOnly(a, b, anywhere(_type == "x").(c))`,
			`(diff::changedOnly a b (nested (global::anywhere (== _type "x")) (group c)))`},
		{`* | order(a)`, `(| * order a)`},
		{`* | order(a desc, b asc, c)`, `(| * order (desc a) (asc b) c)`},
		{`* | order(a == 1 desc)`, `(| * order (desc (== a 1)))`},
		{`* | global::order(a)`, `(| * order a)`},
		{`*[a] | order(b)[0..1]`, `(slice (| (filter * a) order b) 0 1)`},
		{`*[a] | score(b match "x", boost(c, 2)) | order(_score desc)`,
			`(| (| (filter * a) score (match b "x") (global::boost c 2)) order (desc _score))`},
		// Operators and precedence.
		{`a || b || c`, `(|| (|| a b) c)`},
		{`a && b || c && d`, `(|| (&& a b) (&& c d))`},
		{`a == 1 && b != 2`, `(&& (== a 1) (!= b 2))`},
		{`a < 1 || a <= 2 || a > 3 || a >= 4`, `(|| (|| (|| (< a 1) (<= a 2)) (> a 3)) (>= a 4))`},
		{`a in [1, 2]`, `(in a (array 1 2))`},
		{`a in 1..5`, `(in a (.. 1 5))`},
		{`a in 1...5`, `(in a (... 1 5))`},
		{`a in (1..5)`, `(in a (group (.. 1 5)))`},
		{`a in 1 + 1..2 * 3`, `(in a (.. (+ 1 1) (* 2 3)))`},
		{`_id in path("drafts.**")`, `(in _id (global::path "drafts.**"))`},
		{`title match "wo*"`, `(match title "wo*")`},
		{`!a`, `(! a)`},
		{`!a == b`, `(== (! a) b)`},
		{`!a.b`, `(! (. a b))`},
		{`!!a`, `(! (! a))`},
		{`1 + 2 * 3`, `(+ 1 (* 2 3))`},
		{`1 - 2 - 3`, `(- (- 1 2) 3)`},
		{`8 / 4 % 3`, `(% (/ 8 4) 3)`},
		{`2 ** 3 ** 2`, `(** 2 (** 3 2))`},
		{`-2 ** 2`, `(- (** 2 2))`},
		{`+2 ** 2`, `(** (+ 2) 2)`},
		{`2 ** -1`, `(** 2 (- 1))`},
		{`-a * b`, `(* (- a) b)`},
		{`- - 1`, `(- (- 1))`},
		{`a + b | order(c)`, `(+ a (| b order c))`},
		{`(a + b) * c`, `(* (group (+ a b)) c)`},
		{`1 + 2 == 3 && true`, `(&& (== (+ 1 2) 3) true)`},
		// Comments and white space.
		{"// c\n*[a // b\n] // d", `(filter * a)`},
		{"\u00a0*\u0085[\ta\v]\f\r", `(filter * a)`},
		// Identifiers that look like keywords.
		{`in`, `in`},
		{`a.in`, `(. a in)`},
		{`a->in b`, `(in (-> a) b)`},
		{`fn`, `fn`},
		// Custom functions.
		{`fn ns::f($x) = $x{a}; ns::f(b)`, `(query (fn ns::f ($x) (project $x (object (a a)))) (ns::f b))`},
		{`fn ns::f($x) = $x->{a}; fn ns::g($y) = $y[]{"b": ns::f(c)}; ns::g(d)`,
			`(query (fn ns::f ($x) (project (-> $x) (object (a a)))) (fn ns::g ($y) (project ([] $y) (object ("b" (ns::f c))))) (ns::g d))`},
		{`fn ns::f($x) = $x[]->{"o": *[a == ^.b]{"c": ^.d}}; ns::f(e)`,
			`(query (fn ns::f ($x) (project (-> ([] $x)) (object ("o" (project (filter * (== a (. (^ 1) b))) (object ("c" (. (^ 1) d)))))))) (ns::f e))`},
		{`fn math::sum($x) = $x{a}; math::sum(b)`, `(query (fn math::sum ($x) (project $x (object (a a)))) (math::sum b))`},
	}
	for _, tt := range tests {
		n, err := Parse(tt.query)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.query, err)
			continue
		}
		if got := Dump(n); got != tt.tree {
			t.Errorf("Parse(%q)\n got %s\nwant %s", tt.query, got, tt.tree)
		}
		checkRoundTrip(t, tt.query, n)
		checkSpans(t, tt.query, n)
	}
}

// checkRoundTrip checks that Format(n) parses back to the same tree.
func checkRoundTrip(t testing.TB, query string, n Node) {
	t.Helper()
	src := Format(n)
	m, err := Parse(src)
	if err != nil {
		t.Errorf("Parse(Format(Parse(%q))) = Parse(%q): %v", query, src, err)
		return
	}
	if a, b := Dump(n), Dump(m); a != b {
		t.Errorf("round trip of %q through %q changed the tree:\n%s\n%s", query, src, a, b)
	}
}

// checkSpans checks that every span lies inside the query and inside its
// parent's span.
func checkSpans(t testing.TB, query string, root Node) {
	t.Helper()
	var visit func(n Node, outer Span)
	visit = func(n Node, outer Span) {
		sp := n.Span()
		if sp.Start < outer.Start || sp.End > outer.End || sp.Start > sp.End {
			t.Errorf("%q: span %v of %s is outside %v", query, sp, Dump(n), outer)
			return
		}
		for _, c := range Children(n) {
			visit(c, sp)
		}
	}
	visit(root, Span{0, len(query)})
}

func TestSpans(t *testing.T) {
	q := `*[_type == "post"]{"a": b->c}`
	n, err := Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	Inspect(n, func(n Node) bool {
		sp := n.Span()
		got = append(got, q[sp.Start:sp.End])
		return true
	})
	want := []string{
		q, `*[_type == "post"]`, `*`, `_type == "post"`, `_type`, `"post"`,
		`{"a": b->c}`, `"a": b->c`, `b->c`, `b->`, `b`,
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("spans:\n got %q\nwant %q", got, want)
	}
}

// TestParseErrors checks the description and the character offsets of
// syntax errors.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		query      string
		start, end int
		desc       string
	}{
		{``, 0, 0, "unexpected end of query, expected an expression"},
		{`*[`, 2, 2, "unexpected end of query"},
		{`*[a`, 3, 3, "expected ']' to close '['"},
		{`*[a]]`, 4, 5, "unexpected ']' after the end of the expression"},
		{`a b`, 2, 3, `unexpected identifier "b"`},
		{`(1`, 2, 2, "expected ')'"},
		{`[1 2]`, 3, 4, "expected ',' or ']'"},
		{`{"a" 1}`, 1, 4, "cannot determine the key"},
		{`{"a": 1 "b": 2}`, 8, 11, "expected ',' or '}'"},
		{`"abc`, 0, 4, "unterminated string literal"},
		{`"\x"`, 1, 3, `invalid escape sequence "\\x"`},
		{`"\u12"`, 1, 6, `\u must be followed by four hex digits`},
		{`"\uD800"`, 1, 7, "high surrogate without a low surrogate"},
		{`"\uDC00"`, 1, 7, "lone low surrogate"},
		{`"\u{110000}"`, 1, 11, "not a valid Unicode code point"},
		{`"\u{}"`, 1, 5, `\u{ must be followed by hex digits`},
		{`1e`, 0, 2, "expected digits in the exponent"},
		{`12abc`, 0, 3, "invalid number literal"},
		{`$`, 0, 1, "expected a parameter name after $"},
		{`a # b`, 2, 3, "unexpected character '#'"},
		{`"é" == é`, 7, 8, "unexpected character 'é'"}, // character offsets, not bytes
		{"a == \xff", 5, 6, "not valid UTF-8"},
		{`a.1`, 2, 3, "expected an attribute name after '.'"},
		{`a | b`, 5, 5, "expected '(' after the function name b"},
		{`a | 1`, 4, 5, "expected a pipe function or a projection"},
		{`a | x::order(b)`, 4, 12, "unknown pipe function x::order()"},
		{`a | sort(b)`, 0, 11, "unknown pipe function sort()"},
		{`a | order()`, 0, 11, "order() takes at least 1 argument(s), got 0"},
		{`a == b == c`, 7, 9, "comparison operators are non-associative"},
		{`a < b in c`, 6, 8, "comparison operators are non-associative"},
		{`1..2..3`, 4, 6, "ranges are non-associative"},
		{`select(a => b => c)`, 14, 16, "=> is non-associative"},
		{`1..5`, 0, 4, "a range is only allowed"},
		{`a == 1..5`, 5, 9, "a range is only allowed"},
		{`a in (1 + (2..3))`, 11, 15, "a range is only allowed"},
		{`a => b`, 0, 6, "unexpected =>"},
		{`[a => b]`, 1, 7, "unexpected =>"},
		{`a asc`, 0, 5, "asc and desc are only allowed as arguments of order()"},
		{`* | order(a asc && b)`, 10, 15, "asc and desc"},
		{`* | score(a desc)`, 10, 16, "asc and desc"},
		{`boost(a, 1)`, 0, 11, "boost() is only allowed inside score()"},
		{`* | order(boost(a, 1))`, 10, 21, "boost() is only allowed inside score()"},
		{`*[0] | score(a)`, 0, 4, "score() must follow a selection of documents"},
		{`foo(1)`, 0, 6, "unknown function global::foo()"},
		{`nope::foo(1)`, 0, 12, `there is no namespace "nope"`},
		{`string::nope(1)`, 0, 15, "unknown function string::nope()"},
		{`count()`, 0, 7, "count() takes 1 argument(s), got 0"},
		{`round(1, 2, 3)`, 0, 14, "round() takes 1 to 2 argument(s), got 3"},
		{`references()`, 0, 12, "takes at least 1 argument(s)"},
		{`select(1, a => 2)`, 10, 16, "at most one fallback value, which must be last"},
		{`count(1,)`, 8, 9, "expected an expression"},
		{`a[1..b]`, 5, 6, "slice bounds must be constant numbers or parameters"},
		{`a["x"..2]`, 2, 5, "slice bounds must be constant numbers or parameters"},
		{`{a.b}`, 1, 4, "cannot determine the key of this object entry"},
		{`{a->b}`, 1, 5, "cannot determine the key"},
		{`{"a" + "b"}`, 1, 10, "cannot determine the key"},
		{`{a: 1}`, 2, 3, "expected ',' or '}'"},
		{`a.(b)`, 0, 5, "nested selector"},
		{`diff::changedAny(a, b, c[0])`, 23, 27, "invalid selector"},
		{`diff::changedAny(a, b, c->d)`, 23, 26, "invalid selector"},
		{`diff::changedAny(a, b, x.(y + 1))`, 26, 31, "invalid selector"},
		{`diff::changedAny(a, b, count(x))`, 23, 31, "invalid selector"},
		{`^.`, 2, 2, "expected an attribute name after '.'"},
		// Custom functions.
		{`fn ns::f($x) = $x{a}`, 20, 20, "expected ';' after the body"},
		{`fn ns::f($x) = $x{a}; ns::f()`, 22, 29, "ns::f() takes 1 argument(s), got 0"},
		{`fn ns::f($x, $y) = $x{a}; 1`, 0, 25, "exactly one parameter"},
		{`fn ns::f() = $x{a}; 1`, 0, 19, "exactly one parameter"},
		{`fn ns::f($x) = $x; 1`, 15, 17, "must be a projection of its parameter"},
		{`fn ns::f($x) = $y{a}; 1`, 15, 20, "must be a projection of its parameter"},
		{`fn ns::f($x) = $x.a{b}; 1`, 15, 22, "must be a projection of its parameter"},
		{`fn ns::f($x) = $x{"a": $x}; 1`, 23, 25, "parameters ($x) cannot be used"},
		{`fn ns::f($x) = $x{"a": $other}; 1`, 23, 29, "parameters ($other) cannot be used"},
		{`fn ns::f($x) = $x{"a": ^.b}; 1`, 23, 24, "^ reaches outside the custom function"},
		{`fn ns::f($x) = $x{"a": *[b]{"c": ^.^.^.d}}; 1`, 33, 38, "^ reaches outside"},
		{`fn ns::f($x) = $x{"a": ns::f(b)}; 1`, 0, 33, "recursive function definition"},
		{`fn ns::f($x) = $x{"a": ns::g(b)}; fn ns::g($x) = $x{"a": ns::f(b)}; 1`, 0, 33, "recursive function definition"},
		{`fn ns::f($x) = $x{a}; fn ns::f($y) = $y{b}; 1`, 22, 43, "declared twice"},
		{`fn ns::1`, 7, 8, "expected a function name after ns::"},
		{`fn ns::f(x) = x; 1`, 9, 10, "expected a $parameter"},
		{`1; 2`, 1, 2, "unexpected ';'"},
	}
	for _, tt := range tests {
		n, err := Parse(tt.query)
		if err == nil {
			t.Errorf("Parse(%q) = %s, want an error", tt.query, Dump(n))
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q): error %T is not *Error", tt.query, err)
			continue
		}
		if e.Code != "queryParseError" || e.ErrorCode() != "queryParseError" || e.Query != tt.query {
			t.Errorf("Parse(%q): code %q, query %q", tt.query, e.ErrorCode(), e.Query)
		}
		if e.Start != tt.start || e.End != tt.end || !strings.Contains(e.Description, tt.desc) {
			t.Errorf("Parse(%q) = [%d,%d] %q, want [%d,%d] containing %q", tt.query, e.Start, e.End, e.Description, tt.start, tt.end, tt.desc)
		}
		if !strings.Contains(e.Error(), e.Description) {
			t.Errorf("Error() = %q lacks the description", e.Error())
		}
	}
}

// TestDepthLimit checks that deep nesting is an error, not a stack overflow,
// for every kind of nesting, and that nesting up to the limit parses.
func TestDepthLimit(t *testing.T) {
	deep := 100000
	tests := []struct {
		name         string
		open, middle string
		close        string
	}{
		{"parentheses", "(", "1", ")"},
		{"arrays", "[", "1", "]"},
		{"objects", `{"a":`, "1", "}"},
		{"filters", "a[", "b", "]"},
		{"calls", "count(", "a", ")"},
		{"not", "!", "a", ""},
		{"minus", "-", "1", ""},
	}
	for _, tt := range tests {
		q := strings.Repeat(tt.open, deep) + tt.middle + strings.Repeat(tt.close, deep)
		_, err := Parse(q)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Description, "nested too deeply") {
			t.Errorf("%s nested %d deep: got %v, want a depth error", tt.name, deep, err)
		}
		ok := strings.Repeat(tt.open, 100) + tt.middle + strings.Repeat(tt.close, 100)
		if _, err := Parse(ok); err != nil {
			t.Errorf("%s nested 100 deep: %v", tt.name, err)
		}
	}
	// Long operator and traversal chains make deep trees without deep
	// recursion in the parser; the tree depth is limited too.
	for name, q := range map[string]string{
		"or chain":        "a" + strings.Repeat(" || a", deep),
		"attribute chain": "a" + strings.Repeat(".a", deep),
		"pipe chain":      "*" + strings.Repeat("|order(a)", deep),
		"parent chain":    "^" + strings.Repeat(".^", deep) + ".a",
	} {
		_, err := Parse(q)
		if name == "parent chain" {
			if err != nil { // a long ^.^ chain is a single node
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Description, "nested too deeply") {
			t.Errorf("%s of %d: got %v, want a depth error", name, deep, err)
		}
	}
	if _, err := Parse("a" + strings.Repeat(" || a", 200)); err != nil {
		t.Errorf("or chain of 200: %v", err)
	}
}

func TestCharOffset(t *testing.T) {
	q := "aé😀b"
	for _, tt := range []struct{ byteOff, want int }{{-1, 0}, {0, 0}, {1, 1}, {3, 2}, {7, 3}, {8, 4}, {99, 4}} {
		if got := CharOffset(q, tt.byteOff); got != tt.want {
			t.Errorf("CharOffset(%q, %d) = %d, want %d", q, tt.byteOff, got, tt.want)
		}
	}
}

func TestLookupFunc(t *testing.T) {
	if a, ok := LookupFunc("global", "round"); !ok || a != (Arity{1, 2}) {
		t.Errorf("LookupFunc(global, round) = %v, %v", a, ok)
	}
	if _, ok := LookupFunc("global", "nope"); ok {
		t.Error("LookupFunc(global, nope) found")
	}
	if a, ok := LookupPipeFunc("order"); !ok || a.Min != 1 || a.Max >= 0 {
		t.Errorf("LookupPipeFunc(order) = %v, %v", a, ok)
	}
}
