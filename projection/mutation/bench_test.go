package mutation

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// doc2KB returns a document of about 2 KB.
func doc2KB(id string) map[string]any {
	var body []any
	for i := 0; i < 12; i++ {
		body = append(body, map[string]any{"_key": fmt.Sprintf("k%02d", i), "_type": "block", "text": strings.Repeat("lorem ipsum ", 10)})
	}
	return map[string]any{"_id": id, "_type": "article", "_rev": "r0", "_createdAt": "2020-01-01T00:00:00Z",
		"_updatedAt": "2020-01-01T00:00:00Z", "title": "A title", "count": 1.0, "body": body}
}

func benchmarkTx(b *testing.B, body []byte, view View) {
	ctx := Context{TxID: "tx", Now: testNow, MaxDocumentSize: 32 << 20}
	b.Run("mutation", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			tx, err := DecodeTransaction(body)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Apply(ctx, view, tx); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Baseline: decoding the same request into any with encoding/json
	// and encoding the 2 KB document once, the least any server does.
	doc := doc2KB("a")
	b.Run("baseline-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCreate(b *testing.B) {
	doc := doc2KB("new")
	delete(doc, "_rev")
	body, _ := json.Marshal(map[string]any{"mutations": []any{map[string]any{"create": doc}}})
	if len(body) < 1800 || len(body) > 2600 {
		b.Fatalf("body is %d bytes, want about 2 KB", len(body))
	}
	benchmarkTx(b, body, newFakeView())
}

func BenchmarkPatchSet(b *testing.B) {
	view := newFakeView()
	view.put(b, doc2KB("a"))
	body := []byte(`{"mutations":[{"patch":{"id":"a","set":{"title":"New title","body[_key==\"k03\"].text":"changed"}}}]}`)
	benchmarkTx(b, body, view)
}
