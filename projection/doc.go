// Package projection keeps the state that the event log implies: the current
// documents of a dataset, Sanity's perspectives over them (raw, published,
// drafts) and the per-document history index. Every projection can be
// dropped and rebuilt from the log, byte for byte.
//
// A Store (Open) is the projection of one dataset. Store.Apply writes what
// an event does into the caller's batch, next to the event itself. The
// history index finds any version of a document (AtSeq, AtRev, AtTime) by
// seeking, and replays a bounded number of diffs from the nearest full
// version (SnapshotPolicy). Rebuild replays the log into emptied keyspaces
// under a marker that makes Open finish an interrupted rebuild; Verify
// checks the projection (and the log's indexes) against a replay of the log
// without writing anything. Layout and policies: docs/storage.md.
package projection
