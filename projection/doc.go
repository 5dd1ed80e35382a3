// Package projection keeps the state that the event log implies: the current
// documents of a dataset, Sanity's perspectives over them (raw, published,
// drafts) and the per-document history index. Every projection can be
// dropped and rebuilt from the log, byte for byte.
package projection
