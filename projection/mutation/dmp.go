package mutation

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// Sanity's diffMatchPatch operation carries patch text made by the
// JavaScript diff-match-patch (patch_toText): hunks "@@ -start,len +start,len
// @@" followed by lines ' ' (context), '-' (deleted) and '+' (inserted) with
// the text encodeURI-escaped. JavaScript counts string positions in UTF-16
// code units; Go's diffmatchpatch counts bytes of UTF-8. parseDMP reads the
// text; applyDMP converts the positions to bytes against the string being
// patched and lets diffmatchpatch apply the hunks (with its fuzzy matching).

type dmpDiff struct {
	op   byte // ' ', '-' or '+'
	text string
}

type dmpPatch struct {
	start1 int // UTF-16 code units
	diffs  []dmpDiff
}

var dmpHeader = regexp.MustCompile(`^@@ -(\d+),?(\d*) \+(\d+),?(\d*) @@$`)

// MaxDMPLength bounds the length of diffMatchPatch text.
const MaxDMPLength = 16 << 20

func parseDMP(text string) ([]dmpPatch, error) {
	if len(text) > MaxDMPLength {
		return nil, fmt.Errorf("diffMatchPatch text is longer than %d bytes", MaxDMPLength)
	}
	var out []dmpPatch
	lines := strings.Split(text, "\n")
	for n := 0; n < len(lines); {
		line := lines[n]
		if line == "" {
			n++
			continue
		}
		m := dmpHeader.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("diffMatchPatch line %d is not a hunk header (@@ -a,b +c,d @@): %q", n+1, clip(line))
		}
		start1, err1 := strconv.Atoi(m[1])
		_, err2 := strconv.Atoi(m[3])
		if err1 != nil || err2 != nil || start1 > MaxDMPLength {
			return nil, fmt.Errorf("diffMatchPatch line %d has positions out of range", n+1)
		}
		if m[2] != "0" && start1 > 0 {
			start1-- // positions are 1-based unless the length is 0
		}
		p := dmpPatch{start1: start1}
		n++
		for ; n < len(lines); n++ {
			line := lines[n]
			if line == "" {
				continue
			}
			if line[0] == '@' {
				break
			}
			switch line[0] {
			case ' ', '-', '+':
			default:
				return nil, fmt.Errorf("diffMatchPatch line %d starts with %q; expected ' ', '-', '+' or '@'", n+1, line[0])
			}
			t, err := decodeURI(line[1:])
			if err != nil {
				return nil, fmt.Errorf("diffMatchPatch line %d: %v", n+1, err)
			}
			p.diffs = append(p.diffs, dmpDiff{line[0], t})
		}
		out = append(out, p)
	}
	return out, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// decodeURI undoes encodeURI: %XX sequences become bytes, which must form
// UTF-8.
func decodeURI(s string) (string, error) {
	if !strings.Contains(s, "%") {
		if !utf8.ValidString(s) {
			return "", errors.New("the text is not valid UTF-8")
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("incomplete escape %q", s[i:])
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("invalid escape %q", s[i:i+3])
		}
		b = append(b, byte(v))
		i += 2
	}
	if !utf8.Valid(b) {
		return "", errors.New("the escaped text is not valid UTF-8")
	}
	return string(b), nil
}

// utf16ToByte returns the byte offset in s of UTF-16 offset u (rounded
// down to a character boundary; len(s) past the end).
func utf16ToByte(s string, u int) int {
	units := 0
	for i, r := range s {
		w := 1
		if r >= 0x10000 {
			w = 2
		}
		if units+w > u {
			return i
		}
		units += w
	}
	return len(s)
}

func coords(start, length int) string {
	switch length {
	case 0:
		return strconv.Itoa(start) + ",0"
	case 1:
		return strconv.Itoa(start + 1)
	}
	return strconv.Itoa(start+1) + "," + strconv.Itoa(length)
}

func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func applyDMP(patches []dmpPatch, s string) (out string, err error) {
	if len(patches) == 0 {
		return s, nil
	}
	// diffmatchpatch is third-party code: whatever it does with odd
	// hunks, a bad patch must be an error, never a crash.
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("diffMatchPatch cannot be applied: %v", r)
		}
	}()
	// Re-express the hunks in bytes of s and hand them to diffmatchpatch.
	var text strings.Builder
	shift := 0 // bytes inserted minus bytes deleted by earlier hunks
	for _, p := range patches {
		len1, len2 := 0, 0
		for _, d := range p.diffs {
			if d.op != '+' {
				len1 += len(d.text)
			}
			if d.op != '-' {
				len2 += len(d.text)
			}
		}
		start1 := utf16ToByte(s, p.start1)
		fmt.Fprintf(&text, "@@ -%s +%s @@\n", coords(start1, len1), coords(start1+shift, len2))
		for _, d := range p.diffs {
			text.WriteByte(d.op)
			text.WriteString(escapeAll(d.text))
			text.WriteByte('\n')
		}
		shift += len2 - len1
	}
	dmp := diffmatchpatch.New()
	ps, err := dmp.PatchFromText(text.String())
	if err != nil {
		return "", fmt.Errorf("diffMatchPatch: %v", err)
	}
	out, applied := dmp.PatchApply(ps, s)
	for i, ok := range applied {
		if !ok {
			return "", fmt.Errorf("diffMatchPatch hunk %d does not match the current text", i+1)
		}
	}
	if !utf8.ValidString(out) {
		return "", errors.New("diffMatchPatch produced text that is not valid UTF-8")
	}
	return out, nil
}
