package docid

import (
	"crypto/rand"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxLength is the greatest number of characters in a document id.
const MaxLength = 128

// CodeInvalidDocumentID is the code of every *Error of this package.
const CodeInvalidDocumentID = "invalidDocumentId"

// Prefixes of Sanity's reserved id paths.
const (
	DraftsPrefix   = "drafts."
	VersionsPrefix = "versions."
)

// Error reports an invalid document id: what is wrong and at which byte
// offset (Pos, -1 when the id as a whole is at fault).
type Error struct {
	Code        string // always CodeInvalidDocumentID
	ID          string // the offending id
	Pos         int
	Description string
}

func (e *Error) Error() string {
	if e.Pos >= 0 {
		return fmt.Sprintf("invalid document id %q: %s (at offset %d)", e.ID, e.Description, e.Pos)
	}
	return fmt.Sprintf("invalid document id %q: %s", e.ID, e.Description)
}

// ErrorCode returns the stable code of the error.
func (e *Error) ErrorCode() string { return e.Code }

// DocumentID returns the id the error is about.
func (e *Error) DocumentID() string { return e.ID }

func invalid(id string, pos int, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidDocumentID, ID: id, Pos: pos, Description: fmt.Sprintf(format, args...)}
}

// Validate reports whether id is a valid document id, as Sanity defines
// them: one or more segments separated by dots, made of the characters
// a-z, A-Z, 0-9, '_' and '-', none empty and none starting with '-', at most
// MaxLength characters in all. The error, if any, is an *Error.
func Validate(id string) error {
	if id == "" {
		return invalid(id, -1, "the id is empty")
	}
	if len(id) > MaxLength {
		return invalid(id, -1, "the id has %d characters, more than the maximum of %d", len(id), MaxLength)
	}
	start := 0 // start of the current segment
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c == '.':
			if i == start {
				return invalid(id, i, "empty path segment before '.'")
			}
			start = i + 1
		case c == '-':
			if i == start {
				return invalid(id, i, "a path segment starts with '-'")
			}
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		default:
			return invalid(id, i, "character %s is not allowed (only a-z, A-Z, 0-9, '.', '_' and '-')", charName(id, i))
		}
	}
	if start == len(id) {
		return invalid(id, len(id)-1, "the id ends with '.' (an empty last segment)")
	}
	return nil
}

func charName(s string, i int) string {
	c := s[i]
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("byte 0x%02X (not UTF-8)", c)
	}
	return fmt.Sprintf("%U", r)
}

// IsDraft reports whether id is a draft id (drafts.<id>).
func IsDraft(id string) bool { return strings.HasPrefix(id, DraftsPrefix) }

// DraftID returns the id of the draft of the document id: id itself if it is
// a draft, drafts.<base> for a version id, drafts.<id> otherwise.
func DraftID(id string) string {
	if IsDraft(id) {
		return id
	}
	return DraftsPrefix + PublishedID(id)
}

// PublishedID returns the id of the published document that id is a draft
// or version of, or id itself.
func PublishedID(id string) string {
	if IsDraft(id) {
		return id[len(DraftsPrefix):]
	}
	if _, base, ok := Version(id); ok {
		return base
	}
	return id
}

// Version splits a version id versions.<release>.<base> into its release
// name and the id of the document it is a version of. ok is false when id is
// not a version id.
func Version(id string) (release, base string, ok bool) {
	rest, found := strings.CutPrefix(id, VersionsPrefix)
	if !found {
		return "", "", false
	}
	release, base, found = strings.Cut(rest, ".")
	if !found || release == "" || base == "" {
		return "", "", false
	}
	return release, base, true
}

// IsRoot reports whether id lies in the root path, that is, has no dot.
// Only root ids are covered by the default public read grant.
func IsRoot(id string) bool { return !strings.Contains(id, ".") }

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewLength is the length of the ids New returns.
const NewLength = 22

// New returns a new random document id: NewLength characters from
// [0-9A-Za-z] drawn uniformly from crypto/rand (about 131 bits), so it is
// url-safe, valid and, in practice, unique.
func New() string {
	var out [NewLength]byte
	var buf [64]byte
	n := 0
	for n < NewLength {
		// crypto/rand.Read never fails (it panics instead) since Go 1.24.
		_, _ = rand.Read(buf[:])
		for _, b := range buf {
			// 62*4 = 248: reject 248..255 to keep the draw uniform.
			if b >= 248 {
				continue
			}
			out[n] = alphabet[b%62]
			n++
			if n == NewLength {
				break
			}
		}
	}
	return string(out[:])
}
