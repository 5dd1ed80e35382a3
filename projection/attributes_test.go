package projection

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeAttributes(t *testing.T) {
	names := []string{"_id", "_type", "meta", "n", "title"}
	tests := []struct {
		doc  string
		want string // the attributes as JSON; "" when DecodeAttributes must refuse
	}{
		{`{}`, `{}`},
		{`{"_id":"a","_type":"post","body":[{"x":"}"}],"title":"Hi"}`, `{"_id":"a","_type":"post","title":"Hi"}`},
		{`{"_id":"a","meta":{"a":[1,{"b":null}]},"n":-1.5e3,"z":true}`, `{"_id":"a","meta":{"a":[1,{"b":null}]},"n":-1500}`},
		{`{"_id":"\u00e9\n","title":"caf\u00e9 \"q\""}`, `{"_id":"é\n","title":"café \"q\""}`},
		{`{"_id":"a","_id":"b"}`, `{"_id":"b"}`}, // the last one, as json.Unmarshal
		{`{"n":null,"other":"x"}`, `{"n":null}`},
		{`{"title":true,"x":false}`, `{"title":true}`},
		// Not as the store writes: the caller decodes the whole.
		{`{ "_id":"a"}`, ""},
		{`{"_id": "a"}`, ""},
		{`{"_\u0069d":"a","\u0026":1}`, `{"_id":"a"}`},
		{`{"_id":"a"`, ""},
		{`{"_id":"a"}x`, ""},
		{`{"_id":"a",}`, ""},
		{`{"x":[1,2}`, ""},
		{`{"n":tru}`, ""},
		{`["_id"]`, ""},
		{`{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, ""},
		{``, ""},
	}
	for _, tt := range tests {
		got, ok := DecodeAttributes([]byte(tt.doc), names)
		if tt.want == "" {
			if ok {
				t.Errorf("DecodeAttributes(%s) = %v, want a refusal", tt.doc, got)
			}
			continue
		}
		var want map[string]any
		if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
			t.Fatal(err)
		}
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeAttributes(%s) = %v, %v; want %v", tt.doc, got, ok, want)
		}
	}
}

// FuzzDecodeAttributes checks DecodeAttributes against json.Unmarshal: it
// never panics; on any valid JSON object it accepts, it gives the same
// values; and it accepts every object as AppendJSON writes it.
func FuzzDecodeAttributes(f *testing.F) {
	for _, s := range []string{
		`{"_id":"a","_type":"post","body":[{"x":"}"}],"title":"Hi"}`,
		`{"_id":"\u00e9\n","meta":{"a":[1,{"b":null}]},"n":-1.5e3}`,
		`{ "title" : "x" }`,
		`{"title":"\ud800"}`,
		`{"":"\u00a0","&":0}`, // the store writes "&" as "\u0026"
	} {
		f.Add([]byte(s))
	}
	names := []string{"_id", "_type", "meta", "n", "title"}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, ok := DecodeAttributes(doc, names)
		var whole map[string]any
		if json.Unmarshal(doc, &whole) != nil || whole == nil {
			return // not an object: whatever DecodeAttributes said, it did not panic
		}
		want := map[string]any{}
		for _, k := range names {
			if v, ok := whole[k]; ok {
				want[k] = v
			}
		}
		if ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeAttributes(%s) = %v, want %v", doc, got, want)
		}
		stored, err := AppendJSON(nil, whole)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := DecodeAttributes(stored, names); !ok && maxDepth(whole) <= 32 {
			t.Fatalf("DecodeAttributes(%s) refused a document as the store writes it", stored)
		} else if ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeAttributes(%s) = %v, want %v", stored, got, want)
		}
	})
}

// maxDepth is the nesting of arrays and objects in v (an object is 1).
func maxDepth(v any) int {
	d := 0
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			d = max(d, maxDepth(x))
		}
	case []any:
		for _, x := range v {
			d = max(d, maxDepth(x))
		}
	default:
		return 0
	}
	return d + 1
}
