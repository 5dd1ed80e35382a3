// Package jsondiff computes compact, reversible, deterministic structural
// diffs between two JSON values and applies them forwards or backwards.
package jsondiff
