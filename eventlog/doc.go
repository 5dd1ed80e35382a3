// Package eventlog is Vellum's durable record: per dataset, an append-only,
// SHA-256 hash-chained sequence of events (one per committed transaction)
// stored in Pebble, with its idempotency and time indexes. It knows nothing
// of NATS, of mutation semantics or of access control.
//
// One Pebble database (DB, from Open) holds the logs and projections of all
// datasets; every key starts with the dataset number and a keyspace tag
// (KeyPrefix). Log.Append writes an event, its idempotency entry and its
// time-index entry into the caller's batch; the caller commits and syncs
// it, together with the projection's updates. Head finds the end of a log
// in one seek, Verify checks the whole chain. The key layout, the event
// encoding and the Pebble options are described in docs/storage.md.
package eventlog
