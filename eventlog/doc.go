// Package eventlog is Vellum's durable record: per dataset, an append-only,
// SHA-256 hash-chained sequence of events (one per committed transaction)
// stored in Pebble, with its idempotency and time indexes. It knows nothing
// of NATS, of mutation semantics or of access control.
package eventlog
