package projection

// ScanPrefix is Scan in the Raw perspective restricted to the documents
// whose id starts with prefix (for example "_.groups."), read through one
// bounded iterator rather than a scan of the dataset.
func (s *Store) ScanPrefix(prefix string, fn func(id string, doc []byte) error) error {
	lower := s.docKey(prefix)
	upper := prefixEnd(lower)
	it, err := s.newDocIter(lower, upper, false)
	if err != nil {
		return err
	}
	defer it.close()
	for ; it.valid(); it.next() {
		if err := it.emit(fn, ""); err != nil {
			return err
		}
	}
	return it.err()
}

// prefixEnd returns the smallest key greater than every key starting with
// p, or nil when there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Overlay presents a stored document (stored under id original) in the
// drafts perspective under id: _id set to id, _originalId to original.
func Overlay(doc []byte, id, original string) ([]byte, error) { return overlay(doc, id, original) }
