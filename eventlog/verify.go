package eventlog

import (
	"context"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
)

// VerifyEach is Verify reading through r (the database, or a snapshot of
// it, so that a caller can compare the log with other keyspaces as of one
// moment), that also hands every event whose place in the chain has been
// checked to fn, in order. The event and its byte slices are only valid
// during the call; fn must copy what it keeps. An error from fn stops the
// walk and is returned. fn may be nil.
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
	defer it.Close()
	var (
		n    uint64
		prev [32]byte
		ev   Event
	)
	for ok := it.First(); ok; ok = it.Next() {
		want := n + 1
		if want%8192 == 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			if progress != nil {
				progress(n)
			}
		}
		seq, err := l.seqOfKey(it.Key())
		if err != nil {
			return n, err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return n, err
		}
		if err := decodeEvent(v, &ev); err != nil {
			return n, l.located(err, seq)
		}
		if seq != want {
			return n, &ChainError{Dataset: l.dataset, Seq: want, Expected: ev.PrevHash, Found: prev,
				Reason: "event missing: the next stored event is " + strconv.FormatUint(seq, 10)}
		}
		if ev.Seq != seq {
			return n, &ChainError{Dataset: l.dataset, Seq: seq, Expected: ev.Hash, Found: ev.Hash,
				Reason: "event stored under sequence number " + strconv.FormatUint(seq, 10) + " holds sequence number " + strconv.FormatUint(ev.Seq, 10)}
		}
		if ev.PrevHash != prev {
			return n, &ChainError{Dataset: l.dataset, Seq: seq, Expected: prev, Found: ev.PrevHash,
				Reason: "prevHash differs from the hash of the previous event"}
		}
		if h := ComputeHash(prev, v[:len(v)-hashSize]); h != ev.Hash {
			return n, &ChainError{Dataset: l.dataset, Seq: seq, Expected: h, Found: ev.Hash,
				Reason: "hash differs from the hash of the event's contents"}
		}
		if fn != nil {
			if err := fn(&ev); err != nil {
				return n, err
			}
		}
		prev = ev.Hash
		n++
	}
	if err := it.Error(); err != nil {
		return n, err
	}
	if progress != nil {
		progress(n)
	}
	return n, nil
}
