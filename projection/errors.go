package projection

import "fmt"

// Error codes of the projection.
const (
	CodeInvalidPerspective = "invalidPerspective" // an unknown perspective was asked for
	CodeInvalidEvent       = "invalidEvent"       // an event cannot be applied (e.g. a diff with no previous version)
	CodeCorruptProjection  = "corruptProjection"  // stored projection bytes are not what this package writes
)

// Error is a projection failure: what went wrong, and where (dataset,
// document and event sequence number when known).
type Error struct {
	Code        string
	Dataset     uint32
	DocID       string
	Seq         uint64
	Description string
}

func (e *Error) Error() string {
	where := fmt.Sprintf("dataset %d", e.Dataset)
	if e.DocID != "" {
		where += fmt.Sprintf(", document %q", e.DocID)
	}
	if e.Seq != 0 {
		where += fmt.Sprintf(", event %d", e.Seq)
	}
	return fmt.Sprintf("projection: %s (%s): %s", e.Code, where, e.Description)
}

// ErrorCode returns the stable code of the error.
func (e *Error) ErrorCode() string { return e.Code }

func (s *Store) corrupt(id string, seq uint64, format string, args ...any) *Error {
	return &Error{Code: CodeCorruptProjection, Dataset: s.dataset, DocID: id, Seq: seq, Description: fmt.Sprintf(format, args...)}
}

func (s *Store) invalid(id string, seq uint64, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidEvent, Dataset: s.dataset, DocID: id, Seq: seq, Description: fmt.Sprintf(format, args...)}
}
