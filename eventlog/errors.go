package eventlog

import (
	"encoding/hex"
	"fmt"
)

// Error codes of the event log.
const (
	CodeInvalidEvent  = "invalidEvent"    // Append was given an event that cannot be logged
	CodeCorruptEvent  = "corruptEvent"    // stored bytes are not a valid event
	CodeEventNotFound = "eventNotFound"   // no event with that sequence number
	CodeChainBroken   = "hashChainBroken" // Verify found the chain inconsistent
)

// Error is an event-log failure: what went wrong, and where (dataset,
// sequence number and, for corrupt bytes, the field and byte offset).
type Error struct {
	Code        string
	Dataset     uint32
	Seq         uint64 // 0 when not about one event
	Field       string // for corruptEvent: the field being decoded
	Offset      int    // for corruptEvent: its byte offset in the encoding
	Description string
}

func errorf(code string, dataset uint32, seq uint64, format string, args ...any) *Error {
	return &Error{Code: code, Dataset: dataset, Seq: seq, Description: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	where := fmt.Sprintf("dataset %d", e.Dataset)
	if e.Seq != 0 {
		where += fmt.Sprintf(", event %d", e.Seq)
	}
	if e.Field != "" {
		where += fmt.Sprintf(", field %s at byte %d", e.Field, e.Offset)
	}
	return fmt.Sprintf("eventlog: %s (%s): %s", e.Code, where, e.Description)
}

// ErrorCode returns the stable code of the error.
func (e *Error) ErrorCode() string { return e.Code }

// ChainError is the first inconsistency Verify finds in a dataset's hash
// chain: at event Seq, the hash that should be there (Expected) and the one
// that is (Found).
type ChainError struct {
	Dataset  uint32
	Seq      uint64
	Expected [32]byte
	Found    [32]byte
	Reason   string // what is inconsistent, e.g. "prevHash does not match the previous event"
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("eventlog: %s (dataset %d, event %d): %s: expected %s, found %s",
		CodeChainBroken, e.Dataset, e.Seq, e.Reason,
		hex.EncodeToString(e.Expected[:]), hex.EncodeToString(e.Found[:]))
}

// ErrorCode returns "hashChainBroken".
func (e *ChainError) ErrorCode() string { return CodeChainBroken }
