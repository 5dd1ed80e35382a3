package mutation

import "fmt"

// Error codes of this package (the engine passes them through unchanged).
const (
	CodeMalformedTransaction   = "malformedTransaction"
	CodeUnknownMutation        = "unknownMutation"
	CodeInvalidDocumentID      = "invalidDocumentId"
	CodeDocumentNotFound       = "documentNotFound"
	CodeRevisionIDDoesNotMatch = "documentRevisionIDDoesNotMatch"
	CodeDocumentAlreadyExists  = "documentAlreadyExists"
	CodeTypeMismatch           = "typeMismatch"
	CodeInvalidPatchPath       = "invalidPatchPath"
	CodeInvalidPatch           = "invalidPatch"
	CodeDocumentTooLarge       = "documentTooLarge"
)

// Error is the typed error of decoding and applying a transaction. Index is
// the index of the failing mutation in the transaction, or -1 when the
// transaction as a whole is at fault; ID is the document concerned, if
// any; Details holds machine-readable specifics (for example the current
// and expected revision of a conflict, or the position in a patch path).
type Error struct {
	Code        string
	Index       int
	ID          string
	Description string
	Details     map[string]any
}

func (e *Error) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("%s: mutation %d: %s", e.Code, e.Index, e.Description)
	}
	return e.Code + ": " + e.Description
}

// ErrorCode returns the stable code of the error.
func (e *Error) ErrorCode() string { return e.Code }

// MutationIndex returns the index of the failing mutation, if one is to blame.
func (e *Error) MutationIndex() (int, bool) { return e.Index, e.Index >= 0 }

// DocumentID returns the id of the document concerned, or "".
func (e *Error) DocumentID() string { return e.ID }

// Describe returns the sentence describing the error, without its code.
func (e *Error) Describe() string { return e.Description }

// ErrorDetails returns the machine-readable details of the error, or nil.
func (e *Error) ErrorDetails() map[string]any { return e.Details }

func errorf(code string, index int, id string, format string, args ...any) *Error {
	return &Error{Code: code, Index: index, ID: id, Description: fmt.Sprintf(format, args...)}
}
