package projection

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
)

// rebuildBatchBytes is the size at which Rebuild commits its batch.
const rebuildBatchBytes = 8 << 20

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
// marker (the sync makes every batch before it durable too). If the process
// dies in between, the marker is still there and Open runs the rebuild
// again. The caller must not append to the dataset's log while Rebuild
// runs; readers see a partial projection until it returns.
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

	p := make(pending)
	b = s.pdb.NewBatchWithSize(rebuildBatchBytes + rebuildBatchBytes/4)
	defer func() { b.Close() }()
	var want uint64 = 1
	err = s.log.Scan(ctx, 1, func(ev *eventlog.Event) error {
		if ev.Seq != want {
			return &Error{Code: CodeCorruptProjection, Dataset: s.dataset, Seq: want,
				Description: fmt.Sprintf("the log skips from event %d to %d", want-1, ev.Seq)}
		}
		want++
		if err := s.apply(b, ev, p); err != nil {
			return err
		}
		if b.Len() >= rebuildBatchBytes {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Reset()
			clear(p)
		}
		return nil
	})
	if err != nil {
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
