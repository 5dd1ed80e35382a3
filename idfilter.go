package vellum

import (
	"context"
	"sync"

	"github.com/bits-and-blooms/bloom/v3"
)

// idFilter tells a dataset's writer that a document id has certainly never
// been stored, so that a mutation of a new id (a create, most often) skips
// Pebble's lookup of it. A lookup of an id that is not there is the most
// expensive read a write makes: Pebble consults every memtable and every
// level-0 table that may hold it. A filter answers in about a tenth of the
// time (see docs/storage.md).
//
// The filter is a stack of Bloom filters: each holds up to twice as many ids
// as the one before it, so it needs no size up front, and an id is absent
// when no layer may hold it. Ids are only added, never removed: a deleted
// document's id stays "maybe present", which costs the lookup the writer
// made anyway.
//
// It is only correct when it holds every id of the current-documents
// keyspace. The writer adds each id it writes (from the moment the filter
// exists), and a scan adds those already stored; until the scan has
// finished, absent answers false. A rebuild of the projections, which may
// bring back documents from the log, starts the filter over (reset).
//
// Since ids are never removed, a workload that creates and deletes ever new
// ids would grow the filter without bound; once the writer has added more
// than twice as many ids as the scan found, plus idFilterSlack, the writer
// starts it over (overgrown), which bounds it to about three times the
// stored ids.
type idFilter struct {
	mu      sync.Mutex
	layers  []*bloom.BloomFilter
	n       uint   // ids added to the last layer
	ready   bool   // the scan of this generation has finished
	gen     uint64 // incremented by reset
	scanned uint64 // ids the scan added
	added   uint64 // ids the writer added since the reset
}

const (
	// idFilterFirst is the capacity of the first layer; the second holds
	// twice as many ids, and so on (16 layers: about 4 billion ids).
	idFilterFirst = 1 << 16
	// idFilterFalsePositive is each layer's false-positive rate at its
	// capacity: the share of new ids whose lookup is made anyway.
	idFilterFalsePositive = 0.01
	// idFilterSlack is how many ids the writer may add beyond twice the
	// scanned ones before the filter is started over (overgrown).
	idFilterSlack = 1 << 20
)

// add records that id is stored.
func (f *idFilter) add(id string) {
	f.mu.Lock()
	f.addLocked(id)
	f.added++
	f.mu.Unlock()
}

// overgrown reports whether the writer has added so many ids since the
// scan that the filter should be started over: most of them may be gone.
func (f *idFilter) overgrown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready && f.added > 2*f.scanned+idFilterSlack
}

func (f *idFilter) addLocked(id string) {
	if len(f.layers) == 0 || f.n >= idFilterFirst<<(len(f.layers)-1) {
		f.layers = append(f.layers, bloom.NewWithEstimates(idFilterFirst<<len(f.layers), idFilterFalsePositive))
		f.n = 0
	}
	f.layers[len(f.layers)-1].AddString(id)
	f.n++
}

// absent reports whether id has certainly never been stored. It answers
// false until the scan of the stored ids has finished.
func (f *idFilter) absent(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		return false
	}
	for _, l := range f.layers {
		if l.TestString(id) {
			return false
		}
	}
	return true
}

// reset empties the filter and returns the generation that the scan of the
// stored ids must name when it finishes (scanned).
func (f *idFilter) reset() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.layers, f.n, f.ready = nil, 0, false
	f.scanned, f.added = 0, 0
	f.gen++
	return f.gen
}

// scan adds every id that ids yields, then makes the filter ready, unless
// a reset came meanwhile (gen is not the filter's) or the scan failed, in
// which case absent keeps answering false: the filter is an optimisation,
// never a source of truth. The ids are added in chunks, so that the writer
// waits for the lock no longer than a chunk takes.
func (f *idFilter) scan(ctx context.Context, gen uint64, ids func(ctx context.Context, fn func(id string) error) error) error {
	const chunk = 1024
	var pending []string
	flush := func() {
		f.mu.Lock()
		if f.gen == gen {
			for _, id := range pending {
				f.addLocked(id)
			}
			f.scanned += uint64(len(pending))
		}
		f.mu.Unlock()
		pending = pending[:0]
	}
	err := ids(ctx, func(id string) error {
		pending = append(pending, id)
		if len(pending) == chunk {
			flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	flush()
	f.mu.Lock()
	if f.gen == gen {
		f.ready = true
	}
	f.mu.Unlock()
	return nil
}
