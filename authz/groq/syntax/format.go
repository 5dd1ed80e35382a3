package syntax

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Format returns GROQ source for the tree n in a canonical spelling (single
// spaces around binary operators, double-quoted strings, shortest number
// form, namespaces only where not global). Parsing the result of formatting
// a tree returned by Parse yields the same tree (spans aside): parentheses
// are kept as Group nodes, so Format adds none of its own.
func Format(n Node) string {
	var b strings.Builder
	format(&b, n)
	return b.String()
}

func format(b *strings.Builder, n Node) {
	switch x := n.(type) {
	case nil:
		b.WriteString("<nil>")
	case *Null:
		b.WriteString("null")
	case *Bool:
		b.WriteString(strconv.FormatBool(x.Value))
	case *Number:
		b.WriteString(formatNumber(x.Value))
	case *String:
		b.WriteString(quote(x.Value))
	case *Everything:
		b.WriteByte('*')
	case *This:
		b.WriteByte('@')
	case *Parent:
		b.WriteByte('^')
		for i := 1; i < x.Level; i++ {
			b.WriteString(".^")
		}
	case *Param:
		b.WriteString("$" + x.Name)
	case *ThisAttribute:
		b.WriteString(x.Name)
	case *Group:
		b.WriteByte('(')
		format(b, x.Expr)
		b.WriteByte(')')
	case *Tuple:
		b.WriteByte('(')
		formatList(b, x.Members)
		b.WriteByte(')')
	case *Array:
		b.WriteByte('[')
		for i, e := range x.Elements {
			if i > 0 {
				b.WriteString(", ")
			}
			format(b, e)
		}
		b.WriteByte(']')
	case *ArrayElement:
		if x.Splat {
			b.WriteString("...")
		}
		format(b, x.Value)
	case *Object:
		b.WriteByte('{')
		formatList(b, x.Entries)
		b.WriteByte('}')
	case *ObjectAttr:
		if !x.Shorthand {
			b.WriteString(quote(x.Key))
			b.WriteString(": ")
		}
		format(b, x.Value)
	case *ObjectSplat:
		b.WriteString("...")
		if t, ok := x.Value.(*This); !ok || t.Pos.Start != t.Pos.End {
			format(b, x.Value)
		}
	case *ObjectConditional:
		format(b, x.Cond)
		b.WriteString(" => ")
		format(b, x.Value)
	case *Attribute:
		if d, ok := x.Base.(*Deref); ok && isIdentName(x.Name) && !isOperatorWord(x.Name) {
			format(b, d.Base)
			b.WriteString("->" + x.Name)
			return
		}
		format(b, x.Base)
		if isIdentName(x.Name) {
			b.WriteString("." + x.Name)
		} else {
			b.WriteString("[" + quote(x.Name) + "]")
		}
	case *Element:
		format(b, x.Base)
		b.WriteByte('[')
		format(b, x.Index)
		b.WriteByte(']')
	case *Slice:
		format(b, x.Base)
		b.WriteByte('[')
		format(b, x.Low)
		b.WriteString(rangeOp(x.Exclusive))
		format(b, x.High)
		b.WriteByte(']')
	case *Filter:
		format(b, x.Base)
		b.WriteByte('[')
		format(b, x.Cond)
		b.WriteByte(']')
	case *ArrayPostfix:
		format(b, x.Base)
		b.WriteString("[]")
	case *Projection:
		format(b, x.Base)
		b.WriteByte(' ')
		format(b, x.Object)
	case *Deref:
		format(b, x.Base)
		b.WriteString("->")
	case *Nested:
		format(b, x.Base)
		b.WriteByte('.')
		format(b, x.Inner)
	case *FuncCall:
		if x.Namespace != "global" {
			b.WriteString(x.Namespace + "::")
		}
		b.WriteString(x.Name + "(")
		formatList(b, x.Args)
		b.WriteByte(')')
	case *PipeCall:
		format(b, x.Base)
		b.WriteString(" | " + x.Name + "(")
		formatList(b, x.Args)
		b.WriteByte(')')
	case *Asc:
		format(b, x.Expr)
		b.WriteString(" asc")
	case *Desc:
		format(b, x.Expr)
		b.WriteString(" desc")
	case *Pair:
		format(b, x.Cond)
		b.WriteString(" => ")
		format(b, x.Value)
	case *Binary:
		format(b, x.Left)
		b.WriteString(" " + string(x.Op) + " ")
		format(b, x.Right)
	case *Unary:
		b.WriteString(string(x.Op))
		format(b, x.Operand)
	case *Range:
		format(b, x.Low)
		b.WriteString(rangeOp(x.Exclusive))
		format(b, x.High)
	case *Query:
		for _, f := range x.Funcs {
			format(b, f)
			b.WriteByte(' ')
		}
		format(b, x.Expr)
	case *FuncDecl:
		b.WriteString("fn " + x.Namespace + "::" + x.Name + "(")
		for i, p := range x.Params {
			if i > 0 {
				b.WriteString(", ")
			}
			format(b, p)
		}
		b.WriteString(") = ")
		format(b, x.Body)
		b.WriteByte(';')
	default:
		b.WriteString("<unknown>")
	}
}

func formatList[T Node](b *strings.Builder, ns []T) {
	for i, n := range ns {
		if i > 0 {
			b.WriteString(", ")
		}
		format(b, n)
	}
}

func rangeOp(exclusive bool) string {
	if exclusive {
		return "..."
	}
	return ".."
}

// formatNumber spells f as a GROQ number literal that parses back to f.
// Literals too large for a float64 parse as +Inf, spelled 1e999.
func formatNumber(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "1e999"
	case math.IsInf(f, -1):
		return "-1e999"
	case math.IsNaN(f):
		return "null"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// quote returns s as a double-quoted GROQ string literal.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f || r == utf8.RuneError {
				b.WriteString(`\u`)
				h := strconv.FormatInt(int64(r), 16)
				b.WriteString(strings.Repeat("0", 4-len(h)) + h)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// isIdentName reports whether s is an identifier, [A-Za-z_][A-Za-z_0-9]*.
func isIdentName(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}

// Dump returns a compact S-expression of the tree n that names each node's
// construct, without spans, for tests and debugging. For example
// *[_type == "post"].title is
//
//	(. (filter * (== _type "post")) title)
//
// The forms: literals as in GROQ (strings quoted), * @ $name, a bare name for
// ThisAttribute, (^ n), (group e), (tuple e...), (array e... (... e)),
// (object ("key" v) (key v) for shorthand, (... v), (=> c v)), (. base name),
// (elem base index), (slice base lo hi) or (slice... base lo hi),
// (filter base cond), ([] base), (project base object), (-> base),
// (nested base inner), (ns::name args...), (| base name args...),
// (asc e), (desc e), (=> c v), (op l r), (op e) for unary, (.. lo hi),
// (... lo hi), (query (fn ns::name ($p) body)... expr).
func Dump(n Node) string {
	var b strings.Builder
	dump(&b, n)
	return b.String()
}

func dump(b *strings.Builder, n Node) {
	list := func(head string, parts ...Node) {
		b.WriteString("(" + head)
		for _, p := range parts {
			b.WriteByte(' ')
			dump(b, p)
		}
		b.WriteByte(')')
	}
	switch x := n.(type) {
	case nil:
		b.WriteString("<nil>")
	case *Null, *Bool, *Number, *String, *Everything, *This, *Param, *ThisAttribute:
		format(b, x)
	case *Parent:
		b.WriteString("(^ " + strconv.Itoa(x.Level) + ")")
	case *Group:
		list("group", x.Expr)
	case *Tuple:
		list("tuple", x.Members...)
	case *Array:
		b.WriteString("(array")
		for _, e := range x.Elements {
			b.WriteByte(' ')
			dump(b, e)
		}
		b.WriteByte(')')
	case *ArrayElement:
		if x.Splat {
			list("...", x.Value)
		} else {
			dump(b, x.Value)
		}
	case *Object:
		list("object", x.Entries...)
	case *ObjectAttr:
		if x.Shorthand {
			list(x.Key, x.Value)
		} else {
			list(quote(x.Key), x.Value)
		}
	case *ObjectSplat:
		list("...", x.Value)
	case *ObjectConditional:
		list("=>", x.Cond, x.Value)
	case *Attribute:
		b.WriteString("(. ")
		dump(b, x.Base)
		b.WriteString(" " + x.Name + ")")
	case *Element:
		list("elem", x.Base, x.Index)
	case *Slice:
		head := "slice"
		if x.Exclusive {
			head = "slice..."
		}
		list(head, x.Base, x.Low, x.High)
	case *Filter:
		list("filter", x.Base, x.Cond)
	case *ArrayPostfix:
		list("[]", x.Base)
	case *Projection:
		list("project", x.Base, x.Object)
	case *Deref:
		list("->", x.Base)
	case *Nested:
		list("nested", x.Base, x.Inner)
	case *FuncCall:
		list(x.Namespace+"::"+x.Name, x.Args...)
	case *PipeCall:
		b.WriteString("(| ")
		dump(b, x.Base)
		b.WriteString(" " + x.Name)
		for _, a := range x.Args {
			b.WriteByte(' ')
			dump(b, a)
		}
		b.WriteByte(')')
	case *Asc:
		list("asc", x.Expr)
	case *Desc:
		list("desc", x.Expr)
	case *Pair:
		list("=>", x.Cond, x.Value)
	case *Binary:
		list(string(x.Op), x.Left, x.Right)
	case *Unary:
		list(string(x.Op), x.Operand)
	case *Range:
		list(rangeOp(x.Exclusive), x.Low, x.High)
	case *Query:
		b.WriteString("(query")
		for _, f := range x.Funcs {
			b.WriteByte(' ')
			dump(b, f)
		}
		b.WriteByte(' ')
		dump(b, x.Expr)
		b.WriteByte(')')
	case *FuncDecl:
		b.WriteString("(fn " + x.Namespace + "::" + x.Name + " (")
		for i, p := range x.Params {
			if i > 0 {
				b.WriteByte(' ')
			}
			dump(b, p)
		}
		b.WriteString(") ")
		dump(b, x.Body)
		b.WriteByte(')')
	default:
		b.WriteString("<unknown>")
	}
}
