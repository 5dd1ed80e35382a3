// Package mutation decodes transactions and applies Sanity's mutations
// (create, createOrReplace, createIfNotExists, delete, patch) to documents.
// It is pure: it reads documents through a View and returns the effects a
// transaction would have, without storing anything.
package mutation
