package eventlog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)

// sampleEvents are events covering every field and every kind of effect.
func sampleEvents() map[string]*Event {
	return map[string]*Event{
		"minimal": {Seq: 1, TxID: "t", Time: t0},
		"create": {
			Seq: 7, TxID: "01JD0000000000000000000000", Time: t0, Identity: "robot:ci",
			Mutations: json.RawMessage(`[{"create":{"_id":"a","_type":"post"}}]`),
			Effects: []Effect{{
				DocID: "a", Operation: OpCreate, NewRev: "01JD0000000000000000000000",
				Doc:   []byte(`{"_id":"a","_type":"post"}`),
				Grant: GrantRef{Group: "_.groups.administrator", Index: 0},
			}},
			PrevHash: [32]byte{1, 2, 3},
		},
		"update-diff-and-delete": {
			Seq: math.MaxUint64, TxID: "client-tx-1", Time: t0.Add(time.Hour), Identity: "user:42",
			Mutations: json.RawMessage(`[{"patch":{"id":"a","set":{"n":1}}},{"delete":{"id":"drafts.a"}}]`),
			Effects: []Effect{
				{DocID: "a", Operation: OpUpdate, PrevRev: "r1", NewRev: "r2", Diff: []byte(`["o",{"n":["+",1]}]`), Grant: GrantRef{Group: "_.groups.editors", Index: 3}},
				{DocID: "drafts.a", Operation: OpDelete, PrevRev: "r0", Grant: GrantRef{Group: "_.groups.editors", Index: 1 << 30}},
				{DocID: "b", Operation: OpUpdate, PrevRev: "r1", NewRev: "r2", Doc: []byte(`{}`)},
			},
			PrevHash: [32]byte{0xff, 31: 0xee},
		},
		"pre-1970 time": {Seq: 2, TxID: "x", Time: time.Date(1700, 1, 1, 0, 0, 0, 1, time.UTC)},
		"utf-8 and binary strings": {
			Seq: 3, TxID: "tx\x00\xff", Time: t0, Identity: "ünïcødé",
			Effects: []Effect{{DocID: "é", Operation: OpCreate, Doc: []byte("\x00")}},
		},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for name, ev := range sampleEvents() {
		t.Run(name, func(t *testing.T) {
			data, err := Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			if want := ComputeHash(ev.PrevHash, data[:len(data)-32]); ev.Hash != want || !bytes.Equal(data[len(data)-32:], want[:]) {
				t.Fatalf("hash not set to SHA-256(prevHash ‖ body)")
			}
			got, err := DecodeEvent(data)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Time.Equal(ev.Time) || got.Time.Location() != time.UTC {
				t.Errorf("time = %v, want %v in UTC", got.Time, ev.Time)
			}
			want := *ev
			want.Time, got.Time = time.Time{}, time.Time{}
			if len(want.Mutations) == 0 {
				want.Mutations = nil
			}
			if len(want.Effects) == 0 {
				want.Effects = nil
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("decoded\n%+v\nwant\n%+v", *got, want)
			}
			got.Time = ev.Time
			again, err := Encode(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Errorf("re-encoding differs:\n%x\n%x", again, data)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := func() *Event {
		return &Event{Seq: 1, TxID: "t", Time: t0, Effects: []Effect{{DocID: "a", Operation: OpCreate, Doc: []byte(`{}`)}}}
	}
	tests := []struct {
		name   string
		mutate func(*Event)
		valid  bool
	}{
		{"valid", func(*Event) {}, true},
		{"seq 0", func(e *Event) { e.Seq = 0 }, false},
		{"no txid", func(e *Event) { e.TxID = "" }, false},
		{"zero time", func(e *Event) { e.Time = time.Time{} }, false},
		{"year 2300", func(e *Event) { e.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }, false},
		{"no doc id", func(e *Event) { e.Effects[0].DocID = "" }, false},
		{"unknown operation", func(e *Event) { e.Effects[0].Operation = "replace" }, false},
		{"create without doc", func(e *Event) { e.Effects[0].Doc = nil }, false},
		{"create with empty doc", func(e *Event) { e.Effects[0].Doc = []byte{} }, false},
		{"doc and diff", func(e *Event) { e.Effects[0].Diff = []byte(`1`) }, false},
		{"delete with doc", func(e *Event) { e.Effects[0].Operation = OpDelete }, false},
		{"delete", func(e *Event) { e.Effects[0].Operation = OpDelete; e.Effects[0].Doc = nil }, true},
		{"negative grant index", func(e *Event) { e.Effects[0].Grant.Index = -1 }, false},
		{"huge grant index", func(e *Event) { e.Effects[0].Grant.Index = math.MaxInt32 + 1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := ok()
			tt.mutate(ev)
			err := ev.Validate()
			if tt.valid {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidEvent {
				t.Fatalf("error = %v, want code %s", err, CodeInvalidEvent)
			}
			if _, err := Encode(ev); err == nil {
				t.Fatal("Encode accepted an invalid event")
			}
		})
	}
}

// TestDecodeCorrupt checks that every truncation and a table of targeted
// corruptions give a corruptEvent error naming the field, never a panic.
func TestDecodeCorrupt(t *testing.T) {
	ev := sampleEvents()["update-diff-and-delete"]
	data, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n++ {
		if _, err := DecodeEvent(data[:n]); !isCorrupt(err) {
			t.Fatalf("truncated to %d bytes: error = %v, want corruptEvent", n, err)
		}
	}

	// Offsets in the encoding of a small event, for targeted edits.
	small := &Event{Seq: 5, TxID: "tx", Time: time.Unix(0, 1), Identity: "id",
		Effects: []Effect{{DocID: "d", Operation: OpCreate, Doc: []byte("{}"), Grant: GrantRef{Group: "g", Index: 1}}}}
	base, err := Encode(small)
	if err != nil {
		t.Fatal(err)
	}
	// version 0 | seq 1 | time 2 | txid 3..5 | identity 6..8 | mutations 9 |
	// count 10 | docID 11..12 | op 13 | prevRev 14 | newRev 15 | change 16 |
	// doc 17..19 | group 20..21 | index 22 | prevHash 23.. | hash 55..
	edit := func(f func([]byte) []byte) []byte { return f(bytes.Clone(base)) }
	set := func(off int, b byte) []byte { return edit(func(d []byte) []byte { d[off] = b; return d }) }
	tests := []struct {
		name  string
		data  []byte
		field string
	}{
		{"empty", nil, "version"},
		{"version 2", set(0, 2), "version"},
		{"seq 0", set(1, 0), "seq"},
		{"non-minimal seq varint", edit(func(d []byte) []byte {
			return append(append(d[:1:1], 0x85, 0x00), d[2:]...)
		}), "seq"},
		{"overlong varint", append([]byte{1}, bytes.Repeat([]byte{0xff}, 11)...), "seq"},
		{"empty txid", edit(func(d []byte) []byte { return append(append(d[:3:3], 0), d[6:]...) }), "txid"},
		{"txid length beyond end", set(3, 0x7f), "txid"},
		{"effect count beyond end", set(10, 0x7f), "effects"},
		{"unknown operation", set(13, 9), "effect.operation"},
		{"unknown change kind", set(16, 7), "effect.change"},
		{"create without document", edit(func(d []byte) []byte { return append(append(d[:16:16], 0), d[20:]...) }), "effect.change"},
		{"delete with document", set(13, opCodeDelete), "effect.change"},
		{"empty document", edit(func(d []byte) []byte { return append(append(d[:17:17], 0), d[20:]...) }), "effect.change"},
		{"negative grant index", set(22, 1), "effect.grant.index"},
		{"trailing byte", append(bytes.Clone(base), 0), "end"},
		{"missing hash", base[:len(base)-1], "hash"},
	}
	if got, err := DecodeEvent(base); err != nil || got.Effects[0].Grant.Index != 1 || string(got.Effects[0].Doc) != "{}" {
		t.Fatalf("the base encoding does not decode as expected: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeEvent(tt.data)
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeCorruptEvent {
				t.Fatalf("error = %v, want code %s", err, CodeCorruptEvent)
			}
			if e.Field != tt.field {
				t.Errorf("field = %q, want %q (%v)", e.Field, tt.field, err)
			}
		})
	}
}

func isCorrupt(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeCorruptEvent
}

func FuzzDecodeEvent(f *testing.F) {
	for _, ev := range sampleEvents() {
		data, err := Encode(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(binary.AppendUvarint([]byte{1}, math.MaxUint64))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			if !isCorrupt(err) {
				t.Fatalf("error %v is not a corruptEvent *Error", err)
			}
			return
		}
		// Whatever decodes is a valid event whose encoding is exactly data.
		if err := ev.Validate(); err != nil {
			t.Fatalf("decoded an invalid event: %v", err)
		}
		again, err := AppendEncoding(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decode/encode is not the identity:\n in %x\nout %x", data, again)
		}
	})
}
