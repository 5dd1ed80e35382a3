package eventlog

import (
	"context"
	"encoding/binary"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// verifyBatch is a run of consecutive stored events, copied out of the
// iterator, on its way from the chain-checking goroutine to the decoding
// one. If err is set, the last event of the batch is the one at which the
// chain breaks (it is decoded first, so that an undecodable event is
// reported as such) or, when it has none, the chain breaks after the batch.
type verifyBatch struct {
	data    []byte
	ends    []int    // end offset of each event in data
	seqs    []uint64 // its sequence number (from the key)
	err     error
	failing bool // the last event is the failing one
}

const (
	verifyBatchEvents = 256
	verifyBatchBytes  = 1 << 20
)

// VerifyEach is Verify reading through r (the database, or a snapshot of
// it, so that a caller can compare the log with other keyspaces as of one
// moment), that also hands every event whose place in the chain has been
// checked to fn, in order. The event and its byte slices are only valid
// during the call; fn must copy what it keeps. An error from fn stops the
// walk and is returned. fn may be nil.
//
// The work is split between two goroutines: one iterates and checks the
// chain on the stored bytes (sequence numbers, previous hashes, SHA-256),
// the other decodes the events and calls fn.
func (l *Log) VerifyEach(ctx context.Context, r pebble.Reader, progress func(n uint64), fn func(ev *Event) error) (uint64, error) {
	if r == nil {
		r = l.db.pdb
	}
	it, err := r.NewIter(&pebble.IterOptions{
		LowerBound: l.events,
		UpperBound: KeyUpperBound(l.dataset, SpaceEvents),
	})
	if err != nil {
		return 0, err
	}
	batches := make(chan *verifyBatch, 4)
	free := make(chan *verifyBatch, 6)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(batches)
		defer it.Close()
		l.checkChain(ctx, it, batches, free, stop)
	}()
	defer func() {
		close(stop)
		for range batches { // let the chain goroutine finish
		}
		<-done
	}()

	var (
		n  uint64
		ev Event
	)
	for b := range batches {
		start := 0
		for i, end := range b.ends {
			seq := b.seqs[i]
			if (n+1)%8192 == 0 {
				if err := ctx.Err(); err != nil {
					return n, err
				}
				if progress != nil {
					progress(n)
				}
			}
			if err := decodeEvent(b.data[start:end], &ev); err != nil {
				return n, l.located(err, seq)
			}
			start = end
			if b.failing && i == len(b.ends)-1 {
				break // the chain error of this event, below
			}
			if ev.Seq != seq {
				return n, &ChainError{Dataset: l.dataset, Seq: seq, Expected: ev.Hash, Found: ev.Hash,
					Reason: "event stored under sequence number " + strconv.FormatUint(seq, 10) + " holds sequence number " + strconv.FormatUint(ev.Seq, 10)}
			}
			if fn != nil {
				if err := fn(&ev); err != nil {
					return n, err
				}
			}
			n++
		}
		if b.err != nil {
			return n, b.err
		}
		select {
		case free <- b:
		default:
		}
	}
	if progress != nil {
		progress(n)
	}
	return n, nil
}

// checkChain iterates it and checks the chain on the stored bytes, sending
// the events in batches. It stops at the first inconsistency (sent as the
// last batch's err), at the end, or when stop is closed.
func (l *Log) checkChain(ctx context.Context, it *pebble.Iterator, out chan<- *verifyBatch, free chan *verifyBatch, stop <-chan struct{}) {
	var (
		want uint64 = 1
		prev [32]byte
		b    *verifyBatch
	)
	newBatch := func() *verifyBatch {
		select {
		case nb := <-free:
			nb.data, nb.ends, nb.seqs, nb.err, nb.failing = nb.data[:0], nb.ends[:0], nb.seqs[:0], nil, false
			return nb
		default:
			return &verifyBatch{data: make([]byte, 0, verifyBatchBytes+64<<10)}
		}
	}
	send := func() bool {
		select {
		case out <- b:
			b = nil
			return true
		case <-stop:
			return false
		}
	}
	fail := func(err error, failing bool) {
		b.err, b.failing = err, failing
		send()
	}
	b = newBatch()
	for ok := it.First(); ok; ok = it.Next() {
		if want%8192 == 0 {
			if err := ctx.Err(); err != nil {
				fail(err, false)
				return
			}
		}
		seq, err := l.seqOfKey(it.Key())
		if err != nil {
			fail(err, false)
			return
		}
		v, err := it.ValueAndErr()
		if err != nil {
			fail(err, false)
			return
		}
		b.data = append(b.data, v...)
		b.ends = append(b.ends, len(b.data))
		b.seqs = append(b.seqs, seq)
		if len(v) < 1+2*hashSize {
			fail(&Error{Code: CodeCorruptEvent, Dataset: l.dataset, Seq: seq, Field: "hash",
				Description: "stored event too short to hold its hashes"}, true)
			return
		}
		var prevHash, hash [32]byte
		copy(prevHash[:], v[len(v)-2*hashSize:])
		copy(hash[:], v[len(v)-hashSize:])
		if seq != want {
			fail(&ChainError{Dataset: l.dataset, Seq: want, Expected: prevHash, Found: prev,
				Reason: "event missing: the next stored event is " + strconv.FormatUint(seq, 10)}, true)
			return
		}
		// The sequence number the event holds, before its hashes are
		// judged (a moved event is reported as moved); an event whose
		// encoding does not even start right is left to the decoder.
		if held, k := binary.Uvarint(v[1:]); k > 0 && held != seq {
			fail(&ChainError{Dataset: l.dataset, Seq: seq, Expected: hash, Found: hash,
				Reason: "event stored under sequence number " + strconv.FormatUint(seq, 10) + " holds sequence number " + strconv.FormatUint(held, 10)}, true)
			return
		}
		if prevHash != prev {
			fail(&ChainError{Dataset: l.dataset, Seq: seq, Expected: prev, Found: prevHash,
				Reason: "prevHash differs from the hash of the previous event"}, true)
			return
		}
		if h := ComputeHash(prev, v[:len(v)-hashSize]); h != hash {
			fail(&ChainError{Dataset: l.dataset, Seq: seq, Expected: h, Found: hash,
				Reason: "hash differs from the hash of the event's contents"}, true)
			return
		}
		prev = hash
		want++
		if len(b.ends) >= verifyBatchEvents || len(b.data) >= verifyBatchBytes {
			if !send() {
				return
			}
			b = newBatch()
		}
	}
	if err := it.Error(); err != nil {
		fail(err, false)
		return
	}
	if len(b.ends) > 0 {
		send()
	}
}

// AppendTimeKey appends TimeKey(dataset, t, seq) to dst, for callers that
// build many keys.
func AppendTimeKey(dst []byte, dataset uint32, t time.Time, seq uint64) []byte {
	dst = binary.BigEndian.AppendUint32(dst, dataset)
	dst = append(dst, SpaceTime)
	dst = binary.BigEndian.AppendUint64(dst, timeBits(t.UnixNano()))
	return binary.BigEndian.AppendUint64(dst, seq)
}
