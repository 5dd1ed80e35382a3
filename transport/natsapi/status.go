package natsapi

import "net/http"

// statusByCode is the one place where engine error codes become response
// statuses. The values are HTTP status codes, so an HTTP transport can use
// the same table; over NATS they travel in the Nats-Service-Error-Code
// header of the micro error response.
var statusByCode = map[string]int{
	// The request itself is wrong.
	"malformedRequest":     http.StatusBadRequest, // this package's own: a body that is not the expected JSON
	"malformedTransaction": http.StatusBadRequest,
	"unknownMutation":      http.StatusBadRequest,
	"invalidDocumentId":    http.StatusBadRequest,
	"typeMismatch":         http.StatusBadRequest,
	"invalidPatchPath":     http.StatusBadRequest,
	"invalidPatch":         http.StatusBadRequest,
	"invalidDatasetName":   http.StatusBadRequest,
	"invalidAclMode":       http.StatusBadRequest,
	"invalidPerspective":   http.StatusBadRequest,
	"queryParseError":      http.StatusBadRequest,
	"invalidFilter":        http.StatusBadRequest,
	"queryEvalError":       http.StatusBadRequest,
	"invalidGroup":         http.StatusBadRequest, // a group document in a transaction is malformed
	"invalidToken":         http.StatusBadRequest, // a token name, role or dataset is not acceptable
	"invalidRequest":       http.StatusBadRequest, // an argument such as an explain action or identity id
	"invalidTime":          http.StatusBadRequest, // export/replay: a malformed or future time
	"importRejected":       http.StatusBadRequest, // import: lines of the file are not acceptable; nothing was written
	"directoryNotEmpty":    http.StatusBadRequest, // replay: --into names a directory that holds files

	// Who is asking.
	"unauthorized":     http.StatusUnauthorized,
	"permissionDenied": http.StatusForbidden,

	// What it is about.
	"unknownDataset":                 http.StatusNotFound,
	"documentNotFound":               http.StatusNotFound,
	"documentAlreadyExists":          http.StatusConflict,
	"documentRevisionIDDoesNotMatch": http.StatusConflict,
	"datasetExists":                  http.StatusConflict,
	"transactionIdReused":            http.StatusConflict, // the id was used by a different transaction
	"documentTooLarge":               http.StatusRequestEntityTooLarge,
	"eventNotFound":                  http.StatusNotFound,
	"unknownTransaction":             http.StatusNotFound,         // export/replay: no such transaction id in the log
	"timeBeforeDataset":              http.StatusNotFound,         // export/replay: the dataset had no event yet at that time
	"readOnly":                       http.StatusMethodNotAllowed, // vellumd --read-only refuses every write
	"importIncomplete":               http.StatusConflict,         // import: a batch failed after earlier ones committed

	// Listeners (docs/listeners.md): the reasons of disconnect and error events.
	"listenerOverflow": http.StatusServiceUnavailable,    // a slow listener was disconnected; it resumes from its lastEventId
	"eventTooLarge":    http.StatusRequestEntityTooLarge, // a listener event larger than NATS's maximum payload

	// What the server cannot do.
	"queryNotSupported": http.StatusNotImplemented,
	"unavailable":       http.StatusServiceUnavailable,
	"canceled":          http.StatusServiceUnavailable, // the daemon is shutting down or the call was abandoned
	"internal":          http.StatusInternalServerError,

	// The store or the daemon is broken: never the caller's fault.
	"corruptEvent":       http.StatusInternalServerError,
	"corruptProjection":  http.StatusInternalServerError,
	"hashChainBroken":    http.StatusInternalServerError,
	"projectionMismatch": http.StatusInternalServerError, // verify: a projection or index differs from its log
	"invalidEvent":       http.StatusInternalServerError,
	"patchMismatch":      http.StatusInternalServerError,
	"malformedPatch":     http.StatusInternalServerError,
	"invalidConfig":      http.StatusInternalServerError,
}

// Status returns the status (an HTTP status code) of an error code. A code
// missing from the table is a server bug and maps to 500.
func Status(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}
