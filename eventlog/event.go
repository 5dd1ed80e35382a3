package eventlog

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/bits"
	"time"
)

// Event is one committed transaction of a dataset.
type Event struct {
	Seq       uint64          // position in the dataset's log, from 1, without gaps
	TxID      string          // the transaction id (a ULID, or the client's transactionId)
	Time      time.Time       // commit time (UTC, ns); non-decreasing along the log
	Identity  string          // who caused the transaction
	Mutations json.RawMessage // the mutations as submitted
	Effects   []Effect        // one per document the transaction changed
	PrevHash  [32]byte        // Hash of the previous event; zero for the first
	Hash      [32]byte        // SHA-256(PrevHash ‖ encoding of the event without Hash)
}

// Effect is what a transaction did to one document: enough to replay it
// without re-running any patch logic.
type Effect struct {
	DocID     string
	Operation string // OpCreate, OpUpdate or OpDelete
	PrevRev   string // the document's _rev before, "" if it did not exist
	NewRev    string // its _rev after, "" for a delete
	Doc       []byte // the resulting document's JSON, or nil
	Diff      []byte // or a jsondiff patch (JSON) against the previous version
	Grant     GrantRef
}

// GrantRef names the grant that allowed an effect: the group document and
// the index of the grant in it.
type GrantRef struct {
	Group string
	Index int
}

// Operations of an effect.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// encodingVersion is the first byte of every encoded event.
const encodingVersion = 1

const (
	opCodeCreate = 1
	opCodeUpdate = 2
	opCodeDelete = 3

	changeNone = 0
	changeDoc  = 1
	changeDiff = 2
)

// minEncodedEffect is the size of the smallest valid encoded effect: one
// byte for each length, code and the grant index.
const minEncodedEffect = 7

// hashSize is the size of PrevHash and Hash.
const hashSize = sha256.Size

// AppendEncoding appends the binary encoding of ev (including ev.Hash as it
// is) to dst. The layout, version 1:
//
//	version   1 byte (1)
//	seq       uvarint
//	time      varint, Unix nanoseconds
//	txid      uvarint length ‖ bytes
//	identity  uvarint length ‖ bytes
//	mutations uvarint length ‖ bytes
//	effects   uvarint count, then per effect:
//	  docID     uvarint length ‖ bytes
//	  operation 1 byte: 1 create, 2 update, 3 delete
//	  prevRev   uvarint length ‖ bytes
//	  newRev    uvarint length ‖ bytes
//	  change    1 byte: 0 none, 1 document, 2 diff; then (unless 0) uvarint length ‖ bytes
//	  group     uvarint length ‖ bytes
//	  index     varint
//	prevHash  32 bytes
//	hash      32 bytes
//
// The hash covers PrevHash and everything before the final 32 bytes. It
// returns an *Error if ev is not a valid event (see Validate).
func AppendEncoding(dst []byte, ev *Event) ([]byte, error) {
	if err := ev.Validate(); err != nil {
		return dst, err
	}
	return appendEncoding(dst, ev), nil
}

func appendEncoding(dst []byte, ev *Event) []byte {
	dst = append(dst, encodingVersion)
	dst = binary.AppendUvarint(dst, ev.Seq)
	dst = binary.AppendVarint(dst, ev.Time.UnixNano())
	dst = appendBytes(dst, ev.TxID)
	dst = appendBytes(dst, ev.Identity)
	dst = appendBytes(dst, ev.Mutations)
	dst = binary.AppendUvarint(dst, uint64(len(ev.Effects)))
	for i := range ev.Effects {
		ef := &ev.Effects[i]
		dst = appendBytes(dst, ef.DocID)
		dst = append(dst, opCode(ef.Operation))
		dst = appendBytes(dst, ef.PrevRev)
		dst = appendBytes(dst, ef.NewRev)
		switch {
		case ef.Doc != nil:
			dst = append(dst, changeDoc)
			dst = appendBytes(dst, ef.Doc)
		case ef.Diff != nil:
			dst = append(dst, changeDiff)
			dst = appendBytes(dst, ef.Diff)
		default:
			dst = append(dst, changeNone)
		}
		dst = appendBytes(dst, ef.Grant.Group)
		dst = binary.AppendVarint(dst, int64(ef.Grant.Index))
	}
	dst = append(dst, ev.PrevHash[:]...)
	dst = append(dst, ev.Hash[:]...)
	return dst
}

func appendBytes[T ~string | ~[]byte](dst []byte, s T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func opCode(op string) byte {
	switch op {
	case OpCreate:
		return opCodeCreate
	case OpUpdate:
		return opCodeUpdate
	case OpDelete:
		return opCodeDelete
	}
	return 0
}

// minTime and maxTime bound the times an event can carry: those whose Unix
// nanoseconds fit an int64.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// Validate reports (as an *Error with code "invalidEvent") what makes ev
// unfit for the log: a zero sequence number, an empty transaction id, a time
// outside the years 1678–2262, an effect without document id, with an
// unknown operation, with both a document and a diff, a create or update
// without either, a delete with one, or a grant index outside 0–2³¹−1.
func (ev *Event) Validate() error {
	bad := func(format string, args ...any) error {
		return errorf(CodeInvalidEvent, 0, ev.Seq, format, args...)
	}
	if ev.Seq == 0 {
		return bad("sequence number 0 (the log starts at 1)")
	}
	if ev.TxID == "" {
		return bad("empty transaction id")
	}
	if ev.Time.Before(minTime) || ev.Time.After(maxTime) {
		return bad("time %s outside the representable range", ev.Time)
	}
	for i := range ev.Effects {
		ef := &ev.Effects[i]
		if ef.DocID == "" {
			return bad("effect %d: empty document id", i)
		}
		switch opCode(ef.Operation) {
		case 0:
			return bad("effect %d on %q: unknown operation %q", i, ef.DocID, ef.Operation)
		case opCodeDelete:
			if ef.Doc != nil || ef.Diff != nil {
				return bad("effect %d on %q: a delete carries no document or diff", i, ef.DocID)
			}
		default:
			if (ef.Doc == nil) == (ef.Diff == nil) {
				return bad("effect %d on %q: a %s needs exactly one of document and diff", i, ef.DocID, ef.Operation)
			}
			if len(ef.Doc) == 0 && len(ef.Diff) == 0 {
				return bad("effect %d on %q: empty document or diff", i, ef.DocID)
			}
		}
		if ef.Grant.Index < 0 || ef.Grant.Index > math.MaxInt32 {
			return bad("effect %d on %q: grant index %d out of range", i, ef.DocID, ef.Grant.Index)
		}
	}
	return nil
}

// ComputeHash returns SHA-256(prevHash ‖ body), where body is an encoded
// event without its final 32 hash bytes.
func ComputeHash(prevHash [32]byte, body []byte) [32]byte {
	h := sha256.New()
	h.Write(prevHash[:])
	h.Write(body)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Encode returns the encoding of ev with ev.Hash computed from ev.PrevHash
// and the rest of the event; it also stores that hash in ev.Hash.
func Encode(ev *Event) ([]byte, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	buf := appendEncoding(make([]byte, 0, encodedSizeHint(ev)), ev)
	body := buf[:len(buf)-hashSize]
	ev.Hash = ComputeHash(ev.PrevHash, body)
	copy(buf[len(body):], ev.Hash[:])
	return buf, nil
}

func encodedSizeHint(ev *Event) int {
	n := 1 + 10 + 10 + 3*5 + len(ev.TxID) + len(ev.Identity) + len(ev.Mutations) + 5 + 2*hashSize
	for i := range ev.Effects {
		ef := &ev.Effects[i]
		n += minEncodedEffect + 4*5 + 10 + len(ef.DocID) + len(ef.PrevRev) + len(ef.NewRev) +
			len(ef.Doc) + len(ef.Diff) + len(ef.Grant.Group)
	}
	return n
}

// DecodeEvent decodes an event encoded by Encode. The byte slices of the
// result (Mutations, Doc, Diff) alias data; strings are copies. It never
// panics: input that is not a canonical version-1 encoding of a valid event
// gives an *Error with code "corruptEvent" naming the field and offset. The
// hash is not checked (Verify does that).
func DecodeEvent(data []byte) (*Event, error) {
	ev := new(Event)
	if err := decodeEvent(data, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// decoder reads the fields of an encoded event, remembering the first
// failure.
type decoder struct {
	buf   []byte
	off   int
	err   *Error
	cache *stringCache // nil: every string is a new copy
}

// stringCache hands out the strings that recur from event to event
// (document ids, identities, grant groups) once, so that decoding many
// events (Scan) does not allocate them again and again.
type stringCache struct {
	m map[string]string
}

// maxCachedStrings bounds a stringCache; beyond it, strings are copied.
const maxCachedStrings = 1 << 16

func (c *stringCache) get(b []byte) string {
	if c == nil {
		return string(b)
	}
	if s, ok := c.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if c.m == nil {
		c.m = map[string]string{}
	}
	if len(c.m) < maxCachedStrings {
		c.m[s] = s
	}
	return s
}

// cachedString reads a string through the decoder's cache.
func (d *decoder) cachedString(field string) string { return d.cache.get(d.bytes(field)) }

func (d *decoder) fail(field, format string, args ...any) {
	if d.err == nil {
		d.err = errorf(CodeCorruptEvent, 0, 0, format, args...)
		d.err.Field = field
		d.err.Offset = d.off
	}
}

// uvarint reads a minimally encoded unsigned varint.
func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.fail(field, "truncated or overlong varint")
		return 0
	}
	if n != uvarintLen(v) {
		d.fail(field, "non-minimal varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint(field string) int64 {
	u := d.uvarint(field)
	// zig-zag, as binary.Varint
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func uvarintLen(v uint64) int {
	return max(1, (bits.Len64(v)+6)/7)
}

func (d *decoder) byte1(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.buf) {
		d.fail(field, "truncated")
		return 0
	}
	b := d.buf[d.off]
	d.off++
	return b
}

func (d *decoder) bytes(field string) []byte {
	n := d.uvarint(field)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)-d.off) {
		d.fail(field, "length %d exceeds the %d bytes left", n, len(d.buf)-d.off)
		return nil
	}
	b := d.buf[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return b
}

func (d *decoder) string(field string) string { return string(d.bytes(field)) }

func (d *decoder) hash(field string, dst *[32]byte) {
	if d.err != nil {
		return
	}
	if len(d.buf)-d.off < hashSize {
		d.fail(field, "truncated: %d bytes left, need %d", len(d.buf)-d.off, hashSize)
		return
	}
	copy(dst[:], d.buf[d.off:])
	d.off += hashSize
}

// decodeEvent decodes data into ev (overwriting it, reusing ev.Effects'
// capacity).
func decodeEvent(data []byte, ev *Event) error {
	return decodeEventCached(data, ev, nil)
}

// decodeEventCached is decodeEvent taking recurring strings from cache.
func decodeEventCached(data []byte, ev *Event, cache *stringCache) error {
	d := decoder{buf: data, cache: cache}
	if v := d.byte1("version"); d.err == nil && v != encodingVersion {
		d.off--
		d.fail("version", "unknown encoding version %d", v)
	}
	ev.Seq = d.uvarint("seq")
	if d.err == nil && ev.Seq == 0 {
		d.fail("seq", "sequence number 0")
	}
	ns := d.varint("time")
	ev.Time = time.Unix(0, ns).UTC()
	ev.TxID = d.string("txid")
	if d.err == nil && ev.TxID == "" {
		d.fail("txid", "empty transaction id")
	}
	ev.Identity = d.cachedString("identity")
	ev.Mutations = d.bytes("mutations")
	if len(ev.Mutations) == 0 {
		ev.Mutations = nil
	}
	n := d.uvarint("effects")
	if d.err == nil && n > uint64(len(d.buf)-d.off)/minEncodedEffect {
		d.fail("effects", "%d effects cannot fit in %d bytes", n, len(d.buf)-d.off)
	}
	if d.err != nil {
		return d.err
	}
	if cap(ev.Effects) >= int(n) {
		ev.Effects = ev.Effects[:n]
	} else {
		ev.Effects = make([]Effect, n)
	}
	for i := range ev.Effects {
		ef := &ev.Effects[i]
		ef.DocID = d.cachedString("effect.docID")
		if d.err == nil && ef.DocID == "" {
			d.fail("effect.docID", "effect %d: empty document id", i)
		}
		start := d.off
		switch op := d.byte1("effect.operation"); op {
		case opCodeCreate:
			ef.Operation = OpCreate
		case opCodeUpdate:
			ef.Operation = OpUpdate
		case opCodeDelete:
			ef.Operation = OpDelete
		default:
			d.off = start
			d.fail("effect.operation", "effect %d: unknown operation code %d", i, op)
		}
		ef.PrevRev = d.string("effect.prevRev")
		if newRev := d.bytes("effect.newRev"); string(newRev) == ev.TxID {
			ef.NewRev = ev.TxID // as it almost always is
		} else {
			ef.NewRev = string(newRev)
		}
		ef.Doc, ef.Diff = nil, nil
		start = d.off
		switch kind := d.byte1("effect.change"); kind {
		case changeNone:
			if d.err == nil && ef.Operation != OpDelete {
				d.off = start
				d.fail("effect.change", "effect %d: a %s without document or diff", i, ef.Operation)
			}
		case changeDoc, changeDiff:
			if d.err == nil && ef.Operation == OpDelete {
				d.off = start
				d.fail("effect.change", "effect %d: a delete with a document or diff", i)
			}
			b := d.bytes("effect.change")
			if d.err == nil && len(b) == 0 {
				d.fail("effect.change", "effect %d: empty document or diff", i)
			}
			if kind == changeDoc {
				ef.Doc = b
			} else {
				ef.Diff = b
			}
		default:
			d.off = start
			d.fail("effect.change", "effect %d: unknown change kind %d", i, kind)
		}
		ef.Grant.Group = d.cachedString("effect.grant.group")
		idx := d.varint("effect.grant.index")
		if d.err == nil && (idx < 0 || idx > math.MaxInt32) {
			d.fail("effect.grant.index", "effect %d: grant index %d out of range", i, idx)
		}
		ef.Grant.Index = int(idx)
		if d.err != nil {
			return d.err
		}
	}
	d.hash("prevHash", &ev.PrevHash)
	d.hash("hash", &ev.Hash)
	if d.err == nil && d.off != len(d.buf) {
		d.fail("end", "%d trailing bytes", len(d.buf)-d.off)
	}
	if d.err != nil {
		return d.err
	}
	return nil
}
