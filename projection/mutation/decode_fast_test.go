package mutation

import (
	"reflect"
	"strings"
	"testing"
)

// TestDecodeFast lists which transactions the fast decoder takes and checks
// that it decodes them exactly as the general decoder does; the others it
// must leave to the general decoder.
func TestDecodeFast(t *testing.T) {
	for _, tt := range []struct {
		in   string
		fast bool
	}{
		{`{"mutations":[{"create":{"_id":"a","_type":"t","n":1.5e3,"s":"x","b":true,"z":null,"a":[1,[],{}],"o":{"k":"v"}}}]}`, true},
		{" \n{ \"mutations\" : [ { \"createOrReplace\" : { \"_id\" : \"a\" , \"_type\" : \"t\" } } ] , \"transactionId\" : \"tx1\" } \t", true},
		{`{"transactionId":"t","dryRun":true,"returnIds":false,"returnDocuments":true,"mutations":[{"createIfNotExists":{"_id":"a","_type":"t"}}]}`, true},
		{`{"mutations":[{"create":{"_type":"t","esc":"a\"\u00e9\ud83d\ude00\n","bad":"` + "\xff" + `","dup":1,"dup":2,"\u006b":-0}}]}`, true},
		{`{"mutations":[{"patch":{"id":"a","set":{"x":1},"inc":{"n":2}}},{"delete":{"id":"b"}},{"create":{"_type":"t"}}]}`, true},
		{`{"mutations":[{"create":{"_id":"a","_type":"t","deep":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}}]}`, false}, // deeper than the fast decoder goes
		{`{"mutations":[{"create":{"_id":"a","_type":"t","n":1e400}}]}`, false},
		{`{"mutations":[{"create":{"_id":1,"_type":"t"}}]}`, false},
		{`{"mutations":[{"create":{"_id":"a"}}]}`, false},
		{`{"mutations":[{"createOrReplace":{"_type":"t"}}]}`, false},
		{`{"mutations":[{"create":{"_id":"a","_type":"t"},"delete":{"id":"a"}}]}`, false},
		{`{"mutations":[{"cre\u0061te":{"_id":"a","_type":"t"}}]}`, false}, // escaped names: the general decoder
		{`{"mutations":[{"patch":{"id":"a","set":{"x[":1}}}]}`, false},
		{`{"mutations":[]}`, false},
		{`{"mutations":[{"create":{"_id":"a","_type":"t"}}],"mutations":[]}`, false},
		{`{"mutations":[{"create":{"_id":"a","_type":"t"}}],"dryRun":null}`, false},
		{`{"mutations":[{"create":{"_id":"a","_type":"t"}}],"transactionId":""}`, false},
		{`{"mutations":[{"create":{"_id":"a","_type":"t"}}],"other":1}`, false},
		{`{"mutations":[{"create":{"_id":"a","_type":"t"}}]} x`, false},
		{`{"mutations":[{"create":{"_id":"a","_type":"t","n":01}}]}`, false},
		{`{"mutations":[{"create":{"_id":"a","_type":"t","s":"a	b"}}]}`, false},
		{`{"mutations":[{"create":{"_id":"a","_type":"t","s":"\x"}}]}`, false},
		{`{"mutations":[{"create":{"_id":"a","_type":"t"}}`, false},
	} {
		fast, ok := decodeFast([]byte(tt.in))
		slow, err := decodeTransaction([]byte(tt.in))
		if ok != tt.fast {
			t.Errorf("%s: decodeFast ok = %v, want %v (general decoder: %v)", tt.in, ok, tt.fast, err)
			continue
		}
		if ok && (err != nil || !reflect.DeepEqual(fast, slow)) {
			t.Errorf("%s: decodeFast = %#v, general decoder = %#v, %v", tt.in, fast, slow, err)
		}
	}
}

// FuzzDecodeFast checks that whatever the fast decoder accepts, the general
// decoder accepts too, with an equal result.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range seedInputs(f, "apply", "decode") {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := decodeFast(data)
		if !ok {
			return
		}
		slow, err := decodeTransaction(data)
		if err != nil {
			t.Fatalf("decodeFast accepted what the general decoder rejects: %v", err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("decodeFast = %#v, general decoder = %#v", fast, slow)
		}
	})
}

// BenchmarkDecodeTransaction decodes the single-create transaction of the
// engine's throughput benchmark (a ~900-byte document), with the general
// decoder as the same-run baseline.
func BenchmarkDecodeTransaction(b *testing.B) {
	body := []byte(`{"mutations":[{"create":{"_id":"doc-12345","_type":"bench","title":"` + strings.Repeat("x", 60) +
		`","n":12345,"body":"` + strings.Repeat("lorem ipsum ", 60) + `","tags":["a","b","c"],"meta":{"views":10,"ok":true}}}]}`)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for range b.N {
			if _, err := DecodeTransaction(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for range b.N {
			if _, err := decodeTransaction(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
