package eventlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Log is the event log of one dataset.
type Log struct {
	db      *DB
	dataset uint32
	events  []byte // prefix of the events keyspace
}

// Dataset returns the number of the log's dataset.
func (l *Log) Dataset() uint32 { return l.dataset }

// EventKey returns the key of event seq of dataset.
func EventKey(dataset uint32, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(KeyPrefix(dataset, SpaceEvents), seq)
}

// TxKey returns the idempotency-index key of transaction txid of dataset.
func TxKey(dataset uint32, txid string) []byte {
	return append(KeyPrefix(dataset, SpaceTx), txid...)
}

// TimeKey returns the time-index key of an event at t with sequence seq.
// Times are Unix nanoseconds with the sign bit flipped, so that keys sort as
// times do.
func TimeKey(dataset uint32, t time.Time, seq uint64) []byte {
	k := binary.BigEndian.AppendUint64(KeyPrefix(dataset, SpaceTime), timeBits(t.UnixNano()))
	return binary.BigEndian.AppendUint64(k, seq)
}

func timeBits(ns int64) uint64 { return uint64(ns) ^ (1 << 63) }

var encodePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Append writes ev into b: the event under its sequence number, the
// idempotency entry (ev.TxID → ev.Seq) and the time-index entry. It computes
// ev.Hash from ev.PrevHash, which the caller sets to the hash of event
// ev.Seq-1 (zero for the first event): the caller owns the head of the log
// (see Head) and guarantees that sequence numbers are contiguous, that times
// do not decrease and that ev.TxID is not in the log yet (LookupTx). Nothing
// is durable until the caller commits b. An invalid event gives an *Error
// with code "invalidEvent" and leaves b untouched.
func (l *Log) Append(b *pebble.Batch, ev *Event) error {
	if err := ev.Validate(); err != nil {
		err.(*Error).Dataset = l.dataset
		return err
	}
	bp := encodePool.Get().(*[]byte)
	buf := appendEncoding((*bp)[:0], ev)
	body := buf[:len(buf)-hashSize]
	ev.Hash = ComputeHash(ev.PrevHash, body)
	copy(buf[len(body):], ev.Hash[:])

	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], ev.Seq)
	err := errors.Join(
		b.Set(EventKey(l.dataset, ev.Seq), buf, nil),
		b.Set(TxKey(l.dataset, ev.TxID), seq[:], nil),
		b.Set(TimeKey(l.dataset, ev.Time, ev.Seq), nil, nil),
	)
	if cap(buf) <= 1<<20 {
		*bp = buf[:0]
		encodePool.Put(bp)
	}
	return err
}

// Head returns the sequence number and hash of the last event of the log,
// or 0 and the zero hash if it is empty. It reads one key (a reverse seek),
// whatever the length of the log.
func (l *Log) Head() (seq uint64, hash [32]byte, err error) {
	it, err := l.db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: l.events,
		UpperBound: KeyUpperBound(l.dataset, SpaceEvents),
	})
	if err != nil {
		return 0, hash, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, hash, it.Error()
	}
	seq, err = l.seqOfKey(it.Key())
	if err != nil {
		return 0, hash, err
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return 0, hash, err
	}
	if len(v) < 1+2*hashSize {
		return 0, hash, &Error{Code: CodeCorruptEvent, Dataset: l.dataset, Seq: seq, Field: "hash",
			Description: "stored event too short to hold its hashes"}
	}
	copy(hash[:], v[len(v)-hashSize:])
	return seq, hash, nil
}

func (l *Log) seqOfKey(k []byte) (uint64, error) {
	if len(k) != len(l.events)+8 || !bytes.HasPrefix(k, l.events) {
		return 0, errorf(CodeCorruptEvent, l.dataset, 0, "malformed event key %x", k)
	}
	return binary.BigEndian.Uint64(k[len(l.events):]), nil
}

// LookupTx returns the sequence number of the event of transaction txid, if
// the log holds it. The index is permanent: a transaction id, once logged,
// is found forever.
func (l *Log) LookupTx(txid string) (seq uint64, ok bool, err error) {
	v, closer, err := l.db.pdb.Get(TxKey(l.dataset, txid))
	if err == pebble.ErrNotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, errorf(CodeCorruptEvent, l.dataset, 0, "idempotency entry of %q holds %d bytes, not 8", txid, len(v))
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// Get returns event seq, or an *Error with code "eventNotFound".
func (l *Log) Get(seq uint64) (*Event, error) {
	v, closer, err := l.db.pdb.Get(EventKey(l.dataset, seq))
	if err == pebble.ErrNotFound {
		return nil, errorf(CodeEventNotFound, l.dataset, seq, "no such event")
	}
	if err != nil {
		return nil, err
	}
	data := bytes.Clone(v)
	closer.Close()
	ev := new(Event)
	if err := decodeEvent(data, ev); err != nil {
		return nil, l.located(err, seq)
	}
	return ev, nil
}

// located adds the dataset and sequence number to a decoding error.
func (l *Log) located(err error, seq uint64) error {
	if e, ok := err.(*Error); ok {
		e.Dataset, e.Seq = l.dataset, seq
	}
	return err
}

// SeqAtTime returns the sequence number of the last event at or before t,
// or 0 if the log has none. It is one reverse seek in the time index.
func (l *Log) SeqAtTime(t time.Time) (uint64, error) {
	lower := KeyPrefix(l.dataset, SpaceTime)
	it, err := l.db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: lower,
		UpperBound: KeyUpperBound(l.dataset, SpaceTime),
	})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var ok bool
	switch {
	case t.Before(minTime):
		return 0, nil
	case t.After(maxTime) || t.UnixNano() == math.MaxInt64:
		ok = it.Last()
	default:
		ok = it.SeekLT(binary.BigEndian.AppendUint64(bytes.Clone(lower), timeBits(t.UnixNano()+1)))
	}
	if !ok {
		return 0, it.Error()
	}
	k := it.Key()
	if len(k) != len(lower)+16 {
		return 0, errorf(CodeCorruptEvent, l.dataset, 0, "malformed time-index key %x", k)
	}
	return binary.BigEndian.Uint64(k[len(lower)+8:]), nil
}

// Scan calls fn for each event from sequence number from on, in order,
// until fn returns an error (which Scan returns) or the log ends. The event
// passed to fn, its byte slices included, is only valid during the call; fn
// must copy what it keeps.
func (l *Log) Scan(ctx context.Context, from uint64, fn func(ev *Event) error) error {
	it, err := l.db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: EventKey(l.dataset, max(from, 1)),
		UpperBound: KeyUpperBound(l.dataset, SpaceEvents),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	var (
		ev    Event
		cache stringCache
	)
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		seq, err := l.seqOfKey(it.Key())
		if err != nil {
			return err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := decodeEventCached(v, &ev, &cache); err != nil {
			return l.located(err, seq)
		}
		if ev.Seq != seq {
			return errorf(CodeCorruptEvent, l.dataset, seq, "stored under sequence number %d but holds %d", seq, ev.Seq)
		}
		if err := fn(&ev); err != nil {
			return err
		}
	}
	return it.Error()
}

// Verify walks the whole log and checks its hash chain: sequence numbers
// contiguous from 1, each event's PrevHash equal to the previous event's
// Hash, and each Hash equal to SHA-256(PrevHash ‖ the event's encoding). It
// returns the number of events verified and, at the first inconsistency, a
// *ChainError (or an *Error if an event does not decode). progress, if not
// nil, is called with the number verified so far every 8192 events and at
// the end.
//
// The chain cannot reveal that its newest events were removed; an auditor
// compares the head (Head) with one recorded elsewhere for that.
func (l *Log) Verify(ctx context.Context, progress func(n uint64)) (uint64, error) {
	return l.VerifyEach(ctx, nil, progress, nil)
}
