package authz

import "fmt"

// Error codes returned by this package.
const (
	CodePermissionDenied = "permissionDenied" // the principal lacks a permission on a document
	CodeUnauthorized     = "unauthorized"     // the credential is missing, invalid, expired or revoked
	CodeInvalidGroup     = "invalidGroup"     // a group document is malformed (other than its filters)
	CodeInvalidFilter    = "invalidFilter"    // a grant filter uses a construct filters may not use
	CodeQueryParseError  = "queryParseError"  // a grant filter is not valid GROQ
	CodeInvalidToken     = "invalidToken"     // a token name, role or dataset is not acceptable
	CodeInvalidConfig    = "invalidConfig"    // the JWT verification settings are not usable
	CodeInvalidRequest   = "invalidRequest"   // an argument (an action, an identity id) is not acceptable
)

// Error is the error type of this package. Code is one of the Code*
// constants; the other fields say where the problem is when it concerns a
// document, a permission or a grant filter.
type Error struct {
	Code        string
	Description string // a sentence saying what is wrong and where

	ID         string     // the document concerned, if any
	Permission Permission // the permission that was required (permissionDenied)

	// Grant is the index of the offending grant in a group document's
	// grants, or -1 when the error is not about one grant.
	Grant int
	// Filter is the offending grant filter, and Start and End the character
	// (code point) offsets of the offending construct in it, End exclusive,
	// as the GROQ compiler reports them. They are meaningful only when
	// Filter is not empty.
	Filter     string
	Start, End int
}

// ErrorCode returns the stable error code.
func (e *Error) ErrorCode() string { return e.Code }

// Error returns the description.
func (e *Error) Error() string { return e.Description }

// Details returns the fields of e that have no place of their own in an API
// error (the permission, the grant index and the filter), for the engine to
// put in its error's details. It returns nil when there are none.
func (e *Error) Details() map[string]any {
	d := map[string]any{}
	if e.Permission != "" {
		d["permission"] = string(e.Permission)
	}
	if e.Grant >= 0 {
		d["grant"] = e.Grant
	}
	if e.Filter != "" {
		d["filter"] = e.Filter
	}
	if len(d) == 0 {
		return nil
	}
	return d
}

// HasPosition reports whether Start and End locate the problem in Filter.
func (e *Error) HasPosition() bool { return e.Filter != "" }

func denied(id string, perm Permission, format string, args ...any) *Error {
	return &Error{
		Code:        CodePermissionDenied,
		Description: fmt.Sprintf(format, args...),
		ID:          id,
		Permission:  perm,
		Grant:       -1,
	}
}

func unauthorized(format string, args ...any) *Error {
	return &Error{Code: CodeUnauthorized, Description: fmt.Sprintf(format, args...), Grant: -1}
}

func invalidGroup(id string, grant int, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidGroup, Description: fmt.Sprintf(format, args...), ID: id, Grant: grant}
}
