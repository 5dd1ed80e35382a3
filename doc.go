// Package vellum is the engine: it ties the event log, the projections and
// access control together. It accepts transactions for a dataset, applies
// their mutations against the current documents, authorizes every effect,
// and commits the event and the projection updates in one synced Pebble
// batch shared with concurrent transactions (group commit).
package vellum
