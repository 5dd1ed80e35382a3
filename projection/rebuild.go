package projection

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
)

// defaultRebuildBatch is the size at which Rebuild commits a batch.
const defaultRebuildBatch = 8 << 20

// defaultRebuildHold is about the memory in bytes that Rebuild uses to hold
// current documents before writing them (see Rebuild).
const defaultRebuildHold = 64 << 20

// rebuildMarkerKey is the meta key that is present while a rebuild of
// dataset runs.
func rebuildMarkerKey(dataset uint32) []byte {
	return append(eventlog.KeyPrefix(dataset, eventlog.SpaceMeta), "rebuild"...)
}

// Rebuild drops the dataset's projection (current documents and history
// index) and replays the whole log into it. The result is byte for byte what
// applying every event live produced.
//
// It first sets a marker (synced), then deletes both keyspaces and replays
// the events in large unsynced batches; a final synced write removes the
// marker (the sync makes every batch before it durable too). Only the last
// version of a current document matters, so Rebuild holds current documents
// in memory (up to about 64 MiB) and writes each once, when the memory is
// full and at the end, rather than every version an event produced; the
// history index gets every entry, as live. If the process
// dies in between, the marker is still there and Open runs the rebuild
// again; likewise, if Rebuild fails or ctx is canceled, the marker stays
// and the next Open starts the rebuild over. The caller must not append to
// the dataset's log while Rebuild runs; readers see a partial projection
// until it returns.
func (s *Store) Rebuild(ctx context.Context) error {
	marker := rebuildMarkerKey(s.dataset)
	if err := s.pdb.Set(marker, nil, pebble.Sync); err != nil {
		return err
	}
	b := s.pdb.NewBatch()
	err := b.DeleteRange(s.docs, eventlog.KeyUpperBound(s.dataset, eventlog.SpaceDocs), nil)
	if err == nil {
		err = b.DeleteRange(s.history, eventlog.KeyUpperBound(s.dataset, eventlog.SpaceHistory), nil)
	}
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	b.Close()
	if err != nil {
		return err
	}

	// One batch is built while the previous one commits. Diffs find
	// previous versions among the held documents, or in the database once
	// those were written (flushHeld waits for their commit).
	size := s.rebuildBatch
	capacity := max(size+size/4, 4096)
	pipe := NewCommitPipeline(s.pdb, capacity, 4*capacity)
	defer pipe.Close()
	var p pending // empty: documents are held, not written per event
	a := applier{s: s, held: map[string][]byte{}}
	var want uint64 = 1
	err = s.log.Scan(ctx, 1, func(ev *eventlog.Event) error {
		if ev.Seq != want {
			return &Error{Code: CodeCorruptProjection, Dataset: s.dataset, Seq: want,
				Description: fmt.Sprintf("the log skips from event %d to %d", want-1, ev.Seq)}
		}
		want++
		if err := a.apply(pipe.Batch(), ev, &p, nil); err != nil {
			return err
		}
		if a.heldBytes >= s.rebuildHold {
			// Write the held documents and wait for their commit: the
			// database then has every version a later diff may need.
			if err := a.flushHeld(pipe.Batch()); err != nil {
				return err
			}
			if err := pipe.Flush(); err != nil {
				return err
			}
			return pipe.Wait()
		}
		if pipe.Batch().Len() >= size {
			return pipe.Flush()
		}
		return nil
	})
	if err == nil {
		err = pipe.Wait()
	}
	if err != nil {
		return err
	}
	b = pipe.Batch()
	if err := a.flushHeld(b); err != nil {
		return err
	}
	if err := b.Delete(marker, nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// rebuildPending reports whether dataset has an interrupted rebuild.
func rebuildPending(db *pebble.DB, dataset uint32) (bool, error) {
	_, closer, err := db.Get(rebuildMarkerKey(dataset))
	if err == pebble.ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}
