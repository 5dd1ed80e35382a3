package projection

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
)

// CodeProjectionMismatch is the code of a Mismatch: the projection (or one
// of the log's indexes) is not what replaying the log yields.
const CodeProjectionMismatch = "projectionMismatch"

// Mismatch is the first inconsistency Verify found between the log and
// what is derived from it: at event Seq (the lowest sequence number among
// all the inconsistencies found), in Space (the keyspace: "documents",
// "history", "timeIndex" or "txIndex"), about document DocID (if any), what
// replaying the log yields (Expected) and what is stored (Found). Count is
// the number of inconsistencies found in all.
type Mismatch struct {
	Dataset  uint32
	Seq      uint64
	Space    string
	DocID    string
	Expected string
	Found    string
	Count    int
}

func (m *Mismatch) Error() string {
	where := fmt.Sprintf("dataset %d, event %d, %s", m.Dataset, m.Seq, m.Space)
	if m.DocID != "" {
		where += fmt.Sprintf(", document %q", m.DocID)
	}
	more := ""
	if m.Count > 1 {
		more = fmt.Sprintf(" (and %d more inconsistencies)", m.Count-1)
	}
	return fmt.Sprintf("projection: %s (%s): expected %s, found %s%s", CodeProjectionMismatch, where, m.Expected, m.Found, more)
}

// ErrorCode returns "projectionMismatch".
func (m *Mismatch) ErrorCode() string { return CodeProjectionMismatch }

// verifyHold bounds the bytes of document versions Verify keeps in memory
// to apply the next diff to; a version not held is read back from the
// history index and checked against its expected hash. Tests lower it.
var verifyHold = 64 << 20

// expectedDoc is what replaying the log up to now says about one document.
type expectedDoc struct {
	seq     uint64 // the last event that changed it
	deleted bool
	sum     uint64 // hash of its current version
	body    []byte // its current version, when held
	hist    []expectedEntry
}

// expectedEntry is a history entry that replaying the log yields.
type expectedEntry struct {
	seq    uint64
	effect uint32
	kind   byte   // histDoc, histPatch (stored as histPatch or histSnapshot) or histDeleted
	sum    uint64 // hash of the resulting version (not for histDeleted)
}

// verifier holds the state of one Verify.
type verifier struct {
	s       *Store
	snap    pebble.Reader
	seed    maphash.Seed
	docs    map[string]*expectedDoc
	held    int
	txSums  []uint64 // hash of each event's transaction id, by seq-1
	times   *pebble.Iterator
	entries int // history entries expected

	mu    sync.Mutex // guards first: the comparisons run concurrently
	first *Mismatch

	slab    []byte // held versions are copied into slabs, not allocated one by one
	timeKey []byte // reused time-index key
}

// verifySlab is the size of the slabs held versions are copied into.
const verifySlab = 1 << 20

// Verify checks the dataset's log and everything derived from it, as of one
// moment (a snapshot of the store): the hash chain (see
// eventlog.Log.VerifyEach), then that the current documents and the history
// index are exactly what replaying the log yields, and that the time and
// transaction-id indexes list every event and nothing else. It streams the
// log once, keeping per document its expected history (a few words per
// effect) and, up to 64 MiB, its current version (to apply diffs to).
//
// It returns the number of events verified and, on failure, the
// *eventlog.ChainError or *eventlog.Error of a broken chain, or a *Mismatch
// naming the inconsistency with the lowest sequence number.
//
// What it compares: each current document's bytes and the event that last
// wrote it; each history entry's key (document, event), kind (whole
// document, diff or deletion), effect index, and a snapshot's bytes; the
// absence of any other current document or history entry.
func (s *Store) Verify(ctx context.Context, progress func(n uint64)) (uint64, error) {
	snap := s.pdb.NewSnapshot()
	defer snap.Close()
	if _, closer, err := snap.Get(rebuildMarkerKey(s.dataset)); err == nil {
		closer.Close()
		return 0, &Mismatch{Dataset: s.dataset, Space: "documents", Expected: "a complete projection",
			Found: "an interrupted rebuild (reopen the store to finish it)", Count: 1}
	} else if err != pebble.ErrNotFound {
		return 0, err
	}
	times, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: eventlog.KeyPrefix(s.dataset, eventlog.SpaceTime),
		UpperBound: eventlog.KeyUpperBound(s.dataset, eventlog.SpaceTime),
	})
	if err != nil {
		return 0, err
	}
	defer times.Close()
	v := &verifier{s: s, snap: snap, seed: maphash.MakeSeed(), docs: map[string]*expectedDoc{}, times: times}
	times.First()
	n, err := s.log.VerifyEach(ctx, snap, progress, v.event)
	if err != nil {
		return n, err
	}
	if times.Valid() {
		v.mismatch(n+1, "timeIndex", "", "no entry after the last event", fmt.Sprintf("entry %x", times.Key()))
	}
	if err := times.Error(); err != nil {
		return n, err
	}
	// The three comparisons only read the expected state and the snapshot:
	// they run side by side.
	checks := []func() error{v.checkDocs, v.checkHistory, v.checkTx}
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, check := range checks {
		wg.Go(func() { errs[i] = check() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return n, err
	}
	if v.first != nil {
		return n, v.first
	}
	return n, nil
}

// mismatch records an inconsistency, keeping the one with the lowest
// sequence number.
func (v *verifier) mismatch(seq uint64, space, id, expected, found string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.first == nil {
		v.first = &Mismatch{Dataset: v.s.dataset}
	}
	v.first.Count++
	if v.first.Count == 1 || seq < v.first.Seq {
		count := v.first.Count
		*v.first = Mismatch{Dataset: v.s.dataset, Seq: seq, Space: space, DocID: id, Expected: expected, Found: found, Count: count}
	}
}

func (v *verifier) sum(b []byte) uint64 { return maphash.Bytes(v.seed, b) }

// event replays one event into the expected state.
func (v *verifier) event(ev *eventlog.Event) error {
	v.txSums = append(v.txSums, maphash.String(v.seed, ev.TxID))
	want := eventlog.AppendTimeKey(v.timeKey[:0], v.s.dataset, ev.Time, ev.Seq)
	v.timeKey = want
	for v.times.Valid() && bytes.Compare(v.times.Key(), want) < 0 {
		v.mismatch(ev.Seq, "timeIndex", "", fmt.Sprintf("entry %x", want), fmt.Sprintf("an extra entry %x", v.times.Key()))
		v.times.Next()
	}
	if v.times.Valid() && bytes.Equal(v.times.Key(), want) {
		v.times.Next()
	} else {
		v.mismatch(ev.Seq, "timeIndex", "", fmt.Sprintf("entry %x", want), "no entry")
	}
	for i := range ev.Effects {
		ef := &ev.Effects[i]
		d := v.docs[ef.DocID]
		if d == nil {
			d = &expectedDoc{}
			v.docs[ef.DocID] = d
		}
		e := expectedEntry{seq: ev.Seq, effect: uint32(i)}
		switch {
		case ef.Operation == eventlog.OpDelete:
			e.kind = histDeleted
			v.forget(d)
			d.deleted, d.sum = true, 0
		case ef.Doc != nil:
			e.kind, e.sum = histDoc, v.sum(ef.Doc)
			v.keep(d, ef.Doc)
			d.deleted, d.sum = false, e.sum
		default:
			prev, err := v.previous(ef.DocID, d)
			if err != nil {
				return err
			}
			if prev == nil {
				v.mismatch(ev.Seq, "history", ef.DocID, "a previous version for the diff of effect "+strconv.Itoa(i), "none: the log applies a diff to a missing document")
				return nil
			}
			doc, err := applyDiff(prev, ef.Diff)
			if err != nil {
				v.mismatch(ev.Seq, "history", ef.DocID, "a diff that applies to the previous version", err.Error())
				return nil
			}
			e.kind, e.sum = histPatch, v.sum(doc)
			v.keep(d, doc)
			d.deleted, d.sum = false, e.sum
		}
		d.seq = ev.Seq
		d.hist = append(d.hist, e)
		v.entries++
	}
	return nil
}

// keep makes doc the held current version of d (a copy), within the memory
// bound.
func (v *verifier) keep(d *expectedDoc, doc []byte) {
	v.forget(d)
	if v.held+len(doc) > verifyHold {
		for _, o := range v.docs { // drop everything: rare, and simple
			o.body = nil
		}
		v.held = 0
	}
	if len(doc) > verifySlab/4 {
		d.body = append([]byte(nil), doc...)
	} else {
		if cap(v.slab)-len(v.slab) < len(doc) {
			v.slab = make([]byte, 0, verifySlab)
		}
		v.slab = append(v.slab, doc...)
		d.body = v.slab[len(v.slab)-len(doc) : len(v.slab) : len(v.slab)]
	}
	v.held += len(doc)
}

func (v *verifier) forget(d *expectedDoc) {
	v.held -= len(d.body)
	d.body = nil
}

// previous returns the current version of d, or nil if it has none: the
// held bytes, or the version read back from the history index, accepted
// only if its hash is the expected one.
func (v *verifier) previous(id string, d *expectedDoc) ([]byte, error) {
	if d.deleted || len(d.hist) == 0 {
		return nil, nil
	}
	if d.body != nil {
		return d.body, nil
	}
	doc, ok, err := v.s.AtSeq(id, d.seq)
	if err != nil || !ok || v.sum(doc) != d.sum {
		found := "no version"
		switch {
		case err != nil:
			found = err.Error()
		case ok:
			found = "a different version: " + excerpt(doc)
		}
		return nil, &Mismatch{Dataset: v.s.dataset, Seq: d.seq, Space: "history", DocID: id,
			Expected: "the version written by event " + strconv.FormatUint(d.seq, 10), Found: found, Count: 1}
	}
	return doc, nil
}

// excerpt shows the start of a stored value in a message.
func excerpt(b []byte) string {
	const max = 120
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "…"
	}
	return strconv.Quote(string(b))
}

// diffExcerpts shows where a and b differ: both from a little before their
// first differing byte.
func diffExcerpts(a, b []byte) (string, string) {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	start := max(0, i-40)
	prefix := ""
	if start > 0 {
		prefix = "…"
	}
	return prefix + excerpt(a[start:]), prefix + excerpt(b[start:])
}

// checkDocs compares the current documents with the expected ones.
func (v *verifier) checkDocs() error {
	it, err := v.snap.NewIter(&pebble.IterOptions{
		LowerBound: v.s.docs,
		UpperBound: eventlog.KeyUpperBound(v.s.dataset, eventlog.SpaceDocs),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	seen := 0
	for ok := it.First(); ok; ok = it.Next() {
		id := string(it.Key()[len(v.s.docs):])
		val, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		d := v.docs[id]
		if d == nil || d.deleted {
			seq := uint64(0)
			expected := "no such document (no event wrote it)"
			if d != nil {
				seq, expected = d.seq, "no document (event "+strconv.FormatUint(d.seq, 10)+" deleted it)"
			}
			v.mismatch(seq, "documents", id, expected, "a document: "+excerpt(val))
			continue
		}
		seen++
		h, doc, err := parseDocValue(val)
		switch {
		case err != nil:
			v.mismatch(d.seq, "documents", id, "a stored document", fmt.Sprintf("%v: %s", err, excerpt(val)))
		case h.seq != d.seq:
			v.mismatch(min(d.seq, h.seq), "documents", id, "the version written by event "+strconv.FormatUint(d.seq, 10),
				"the version of event "+strconv.FormatUint(h.seq, 10))
		case v.sum(doc) != d.sum:
			expected, found := "the version written by event "+strconv.FormatUint(d.seq, 10), excerpt(doc)
			if d.body != nil {
				expected, found = diffExcerpts(d.body, doc)
			}
			v.mismatch(d.seq, "documents", id, expected, found)
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	live := 0
	for _, d := range v.docs {
		if !d.deleted {
			live++
		}
	}
	if seen != live {
		for id, d := range v.docs {
			if d.deleted {
				continue
			}
			if _, closer, err := v.snap.Get(v.s.docKey(id)); err == nil {
				closer.Close()
				continue
			} else if err != pebble.ErrNotFound {
				return err
			}
			v.mismatch(d.seq, "documents", id, "the version written by event "+strconv.FormatUint(d.seq, 10), "no document")
		}
	}
	return nil
}

var kindNames = map[byte]string{histDoc: "whole document", histPatch: "diff", histSnapshot: "diff with snapshot", histDeleted: "deletion"}

func describeEntry(seq uint64, kind byte, effect uint32) string {
	return fmt.Sprintf("entry for event %d: %s of effect %d", seq, kindNames[kind], effect)
}

// checkHistory compares the history index with the expected entries.
func (v *verifier) checkHistory() error {
	it, err := v.snap.NewIter(&pebble.IterOptions{
		LowerBound: v.s.history,
		UpperBound: eventlog.KeyUpperBound(v.s.dataset, eventlog.SpaceHistory),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	var (
		curID string
		cur   *expectedDoc
		next  int // index in cur.hist of the next expected entry
		found int
	)
	finish := func() {
		if cur != nil && next < len(cur.hist) {
			e := cur.hist[next]
			v.mismatch(e.seq, "history", curID, describeEntry(e.seq, e.kind, e.effect), "no entry")
		}
	}
	for ok := it.First(); ok; ok = it.Next() {
		key := it.Key()[len(v.s.history):]
		z := bytes.IndexByte(key, 0)
		if z < 0 || len(key) != z+9 {
			v.mismatch(0, "history", "", "a key of document id, 0 and sequence number", fmt.Sprintf("key %x", it.Key()))
			continue
		}
		if string(key[:z]) != curID || cur == nil {
			finish()
			curID, next = string(key[:z]), 0
			cur = v.docs[curID]
			if cur == nil {
				cur = &expectedDoc{}
			}
		}
		seq := binary.BigEndian.Uint64(key[z+1:])
		val, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		found++
		e, perr := v.s.parseHistory(curID, it.Key(), val)
		// Expected entries of this document before seq that are missing.
		for next < len(cur.hist) && cur.hist[next].seq < seq {
			m := cur.hist[next]
			v.mismatch(m.seq, "history", curID, describeEntry(m.seq, m.kind, m.effect), "no entry")
			next++
		}
		if next == len(cur.hist) || cur.hist[next].seq != seq {
			v.mismatch(seq, "history", curID, "no entry (event "+strconv.FormatUint(seq, 10)+" did not change the document)", "an entry: "+excerpt(val))
			continue
		}
		want := cur.hist[next]
		next++
		if perr != nil {
			v.mismatch(seq, "history", curID, describeEntry(want.seq, want.kind, want.effect), perr.Error())
			continue
		}
		kindOK := e.kind == want.kind || (want.kind == histPatch && e.kind == histSnapshot)
		if !kindOK || uint32(e.effect) != want.effect {
			v.mismatch(seq, "history", curID, describeEntry(want.seq, want.kind, want.effect), describeEntry(e.seq, e.kind, uint32(e.effect)))
			continue
		}
		if e.kind == histSnapshot && v.sum(e.doc) != want.sum {
			v.mismatch(seq, "history", curID, "a snapshot of the version written by event "+strconv.FormatUint(seq, 10), "a different snapshot: "+excerpt(e.doc))
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	finish()
	if found != v.entries {
		// An expected document with no entry at all was never visited.
		for id, d := range v.docs {
			if len(d.hist) == 0 {
				continue
			}
			lower := v.s.historyPrefix(id)
			it2, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
			if err != nil {
				return err
			}
			has := it2.First()
			it2.Close()
			if !has {
				e := d.hist[0]
				v.mismatch(e.seq, "history", id, describeEntry(e.seq, e.kind, e.effect), "no entry")
			}
		}
	}
	return nil
}

// checkTx compares the transaction-id index with the events' ids.
func (v *verifier) checkTx() error {
	lower := eventlog.KeyPrefix(v.s.dataset, eventlog.SpaceTx)
	it, err := v.snap.NewIter(&pebble.IterOptions{
		LowerBound: lower,
		UpperBound: eventlog.KeyUpperBound(v.s.dataset, eventlog.SpaceTx),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	seen := make([]bool, len(v.txSums))
	for ok := it.First(); ok; ok = it.Next() {
		txid := it.Key()[len(lower):]
		val, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if len(val) != 8 {
			v.mismatch(0, "txIndex", "", "an 8-byte sequence number for transaction "+strconv.Quote(string(txid)), fmt.Sprintf("%d bytes", len(val)))
			continue
		}
		seq := binary.BigEndian.Uint64(val)
		if seq == 0 || seq > uint64(len(v.txSums)) || v.txSums[seq-1] != maphash.Bytes(v.seed, txid) {
			v.mismatch(seq, "txIndex", "", "the id of the transaction of event "+strconv.FormatUint(seq, 10),
				"transaction "+strconv.Quote(string(txid)))
			continue
		}
		seen[seq-1] = true
	}
	if err := it.Error(); err != nil {
		return err
	}
	for i, ok := range seen {
		if !ok {
			v.mismatch(uint64(i+1), "txIndex", "", "an entry for the transaction of event "+strconv.Itoa(i+1), "none")
			break
		}
	}
	return nil
}
