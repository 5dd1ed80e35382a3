package projection

import (
	"bytes"
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"
)

// ScanPrefixAt calls fn, in the order of id, with the id and JSON of every
// document whose id starts with prefix as it was just after event seq (see
// AtSeq), skipping those that did not exist then. It finds the documents
// through the history index, so documents deleted since are found too.
// For example ScanPrefixAt("_.groups.", seq, fn) gives the group documents
// in force after event seq.
func (s *Store) ScanPrefixAt(prefix string, seq uint64, fn func(id string, doc []byte) error) error {
	lower := append(bytes.Clone(s.history), prefix...)
	it, err := s.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; {
		key := it.Key()[len(s.history):]
		z := bytes.IndexByte(key, 0)
		if z < 0 {
			return s.corrupt("", 0, "history key %x without a document id terminator", it.Key())
		}
		id := string(key[:z])
		doc, found, err := s.AtSeq(id, seq)
		if err != nil {
			return err
		}
		if found {
			if err := fn(id, doc); err != nil {
				return err
			}
		}
		// The next document: past every key of id ‖ 0.
		ok = it.SeekGE(append(append(bytes.Clone(s.history), id...), 1))
	}
	return it.Error()
}

// HistorySeqs returns the sequence numbers of the events from from to to
// (inclusive) that changed document id, in order, read from its history
// index.
func (s *Store) HistorySeqs(id string, from, to uint64) ([]uint64, error) {
	if from > to {
		return nil, nil
	}
	lower := binary.BigEndian.AppendUint64(s.historyPrefix(id), from)
	var upper []byte
	if to == ^uint64(0) {
		upper = prefixEnd(s.historyPrefix(id))
	} else {
		upper = binary.BigEndian.AppendUint64(s.historyPrefix(id), to+1)
	}
	it, err := s.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var seqs []uint64
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		seqs = append(seqs, binary.BigEndian.Uint64(k[len(k)-8:]))
	}
	return seqs, it.Error()
}
