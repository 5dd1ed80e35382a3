// Package natsapi serves the engine over NATS request/reply as a discoverable
// micro service (transactions, document reads, datasets, robot tokens, acl
// changes and access explanations), maps engine errors
// to NATS responses in one table, and provides the matching client.
//
// Subjects live under [Prefix] and carry at most one caller-chosen token, a
// dataset name, which is validated before it is ever put into a subject (by
// the client) and after it is taken out of one (by the server). Document ids,
// which contain dots, travel only in message bodies. The subject space,
// headers and bodies are documented in docs/nats.md.
//
// It also publishes every durable transaction to its dataset's JetStream
// stream ([PublishEvents], docs/jetstream.md).
package natsapi
