package projection

import "github.com/cockroachdb/pebble/v2"

// CommitPipeline fills one batch while the previous one commits (without
// sync) on another goroutine: the bulk writers (Rebuild, replay) keep
// building while Pebble copies the last batch into its memtable. Each of
// its two batches is sized once, because a batch that grows copies itself
// again and again.
type CommitPipeline struct {
	batches  [2]*pebble.Batch // [0] is being filled
	done     chan error
	inflight bool
}

// NewCommitPipeline returns a pipeline whose batches start with capacity
// bytes and keep at most retain bytes of buffer across commits.
func NewCommitPipeline(db *pebble.DB, capacity, retain int) *CommitPipeline {
	return &CommitPipeline{
		batches: [2]*pebble.Batch{
			db.NewBatchWithSize(capacity, pebble.WithMaxRetainedSizeBytes(retain)),
			db.NewBatchWithSize(capacity, pebble.WithMaxRetainedSizeBytes(retain)),
		},
		done: make(chan error, 1),
	}
}

// Batch returns the batch being filled; it changes at each Flush.
func (c *CommitPipeline) Batch() *pebble.Batch { return c.batches[0] }

// Flush hands the batch being filled to the committer, once the previous
// commit is done, and starts filling the other one.
func (c *CommitPipeline) Flush() error {
	if err := c.Wait(); err != nil {
		return err
	}
	full := c.batches[0]
	c.batches[0], c.batches[1] = c.batches[1], c.batches[0]
	c.batches[0].Reset()
	c.inflight = true
	go func() { c.done <- full.Commit(pebble.NoSync) }()
	return nil
}

// Wait waits for the commit in flight, if any, and returns its error.
func (c *CommitPipeline) Wait() error {
	if !c.inflight {
		return nil
	}
	c.inflight = false
	return <-c.done
}

// Close waits for the commit in flight and releases both batches.
func (c *CommitPipeline) Close() {
	_ = c.Wait()
	c.batches[0].Close()
	c.batches[1].Close()
}
