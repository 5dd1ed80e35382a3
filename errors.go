package vellum

import (
	"context"
	"errors"
	"fmt"

	"github.com/vellum-db/vellum/authz"
	"github.com/vellum-db/vellum/authz/groq"
	"github.com/vellum-db/vellum/projection/docid"
	"github.com/vellum-db/vellum/projection/mutation"
)

// Error is the typed error every engine call returns. Code is stable and
// machine-readable (for example documentRevisionIDDoesNotMatch); Description
// is a sentence for people. The transport maps Code to NATS and HTTP
// responses in one place.
type Error struct {
	Code        string         `json:"code"`
	Description string         `json:"description"`
	Index       *int           `json:"index,omitempty"` // the failing mutation, when one is to blame
	ID          string         `json:"id,omitempty"`    // the document concerned, if any
	Start       *int           `json:"start,omitempty"` // query positions, for query errors
	End         *int           `json:"end,omitempty"`
	Details     map[string]any `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if e.Index != nil {
		return fmt.Sprintf("%s: mutation %d: %s", e.Code, *e.Index, e.Description)
	}
	return e.Code + ": " + e.Description
}

// ErrorCode returns the stable code of the error.
func (e *Error) ErrorCode() string { return e.Code }

// Engine-level error codes. Lower packages define their own codes (see
// projection/mutation, authz/groq); AsError carries them through unchanged.
const (
	CodeUnknownDataset      = "unknownDataset"
	CodeDatasetExists       = "datasetExists"
	CodeInvalidDatasetName  = "invalidDatasetName"
	CodeInvalidACL          = "invalidAclMode"
	CodeTransactionIDReused = "transactionIdReused"
	CodeQueryNotSupported   = "queryNotSupported"
	CodeUnavailable         = "unavailable"
	CodeCanceled            = "canceled"
	CodeInternal            = "internal"
	CodeInvalidRequest      = "invalidRequest"
)

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

// coded is implemented by the typed errors of Vellum's packages.
type coded interface {
	error
	ErrorCode() string
}

// AsError converts any error into an *Error. Typed errors of Vellum's
// packages keep their code, index, id and positions; context errors become
// canceled; anything else becomes internal.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var me *mutation.Error
	if errors.As(err, &me) {
		out := &Error{Code: me.Code, Description: me.Description, ID: me.ID, Details: me.Details}
		if me.Index >= 0 {
			out.Index = intp(me.Index)
		}
		return out
	}
	var ge *groq.Error
	if errors.As(err, &ge) {
		out := &Error{Code: ge.Code, Description: ge.Description}
		if ge.Start != 0 || ge.End != 0 {
			out.Start, out.End = intp(ge.Start), intp(ge.End)
		}
		if ge.Query != "" {
			out.Details = map[string]any{"query": ge.Query}
		}
		return out
	}
	var de *docid.Error
	if errors.As(err, &de) {
		return &Error{Code: de.Code, Description: de.Error(), ID: de.ID}
	}
	var ae *authz.Error
	if errors.As(err, &ae) {
		out := &Error{Code: ae.Code, Description: ae.Description, ID: ae.ID, Details: ae.Details()}
		if ae.Filter != "" {
			out.Start, out.End = intp(ae.Start), intp(ae.End)
		}
		return out
	}
	var c coded
	if errors.As(err, &c) {
		return &Error{Code: c.ErrorCode(), Description: c.Error()}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: CodeCanceled, Description: err.Error()}
	}
	return &Error{Code: CodeInternal, Description: err.Error()}
}

func intp(i int) *int { return &i }
