package projection

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
)

// Loader builds the projection of a dataset whose log is being written, in
// the same pass: what Rebuild does by reading the log back, for a caller
// that already holds each event in memory as it writes it (a replay into a
// new store). As in Rebuild, history entries go into the caller's batches
// and current documents are held in memory, each written once by Flush
// rather than every version an event produces. The result is byte for byte
// what Rebuild (and applying every event live) produces.
//
// The dataset's projection must be empty when the Loader starts, and the
// events must be given in order from the first. A Loader is not safe for
// concurrent use.
type Loader struct {
	a applier
	p pending // empty: documents are held, not written per event
}

// NewLoader returns a Loader building s's projection.
func (s *Store) NewLoader() *Loader {
	return &Loader{a: applier{s: s, held: map[string][]byte{}}}
}

// Apply writes the history entries of ev into b and holds the documents
// its effects result in (a diff is applied to the previous version, held or
// in the database). ev's byte slices are not kept.
func (l *Loader) Apply(b *pebble.Batch, ev *eventlog.Event) error {
	return l.a.apply(b, ev, &l.p, nil)
}

// HeldBytes returns about how much memory the held documents use.
func (l *Loader) HeldBytes() int { return l.a.heldBytes }

// Flush writes the held documents into b and forgets them. The caller must
// commit b, and the commit must be done, before the next Apply: a later
// diff reads the previous version of a document no longer held from the
// database.
func (l *Loader) Flush(b *pebble.Batch) error { return l.a.flushHeld(b) }
