package syntax

import (
	"encoding/json"
	"testing"
)

// benchFilter is a realistic grant-style filter: six clauses with in, match,
// defined, a comparison, a function call and a parameter.
const benchFilter = `_type in ["post", "article"] && !(_id in path("drafts.**")) && ` +
	`title match "groq*" && defined(publishedAt) && publishedAt < now() && ` +
	`author._ref == $author && count(tags[@ in $allowed]) > 0`

// BenchmarkParse measures Parse on benchFilter, next to two baselines on the
// same bytes in the same run: the lexer alone, and encoding/json decoding a
// JSON string literal of the same length (a raw single-pass scan).
func BenchmarkParse(b *testing.B) {
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(int64(len(benchFilter)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse(benchFilter); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-lex", func(b *testing.B) {
		b.SetBytes(int64(len(benchFilter)))
		b.ReportAllocs()
		for b.Loop() {
			lx := lexer{src: benchFilter}
			for {
				t, err := lx.next()
				if err != nil {
					b.Fatal(err.msg)
				}
				if t.kind == tEOF {
					break
				}
			}
		}
	})
	raw, _ := json.Marshal(benchFilter)
	b.Run("baseline-json-string", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		var s string
		for b.Loop() {
			if err := json.Unmarshal(raw, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
