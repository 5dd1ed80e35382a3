package docid

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		id   string
		pos  int    // -2: valid
		desc string // part of the description
	}{
		{"abc", -2, ""},
		{"drafts.abc", -2, ""},
		{"versions.r1.abc", -2, ""},
		{"_.groups.editors", -2, ""},
		{"a-b_c.D9", -2, ""},
		{"a-", -2, ""},
		{strings.Repeat("x", 128), -2, ""},
		{"", -1, "empty"},
		{strings.Repeat("x", 129), -1, "129 characters"},
		{".abc", 0, "empty path segment"},
		{"a..b", 2, "empty path segment"},
		{"abc.", 3, "ends with '.'"},
		{"-abc", 0, "starts with '-'"},
		{"dog.-abc", 4, "starts with '-'"},
		{"a b", 1, "' '"},
		{"a/b", 1, "'/'"},
		{"aé", 1, "U+00E9"},
		{"a\x00", 1, "U+0000"},
		{"a\xff", 1, "byte 0xFF"},
	}
	for _, tt := range tests {
		err := Validate(tt.id)
		if tt.pos == -2 {
			if err != nil {
				t.Errorf("Validate(%q) = %v, want nil", tt.id, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Validate(%q) = %v, want *Error", tt.id, err)
			continue
		}
		if e.Code != "invalidDocumentId" || e.ErrorCode() != "invalidDocumentId" || e.Pos != tt.pos || e.ID != tt.id ||
			!strings.Contains(e.Error(), tt.desc) {
			t.Errorf("Validate(%q) = %+v (%q), want pos %d and %q", tt.id, e, e.Error(), tt.pos, tt.desc)
		}
	}
}

func TestPaths(t *testing.T) {
	tests := []struct {
		id, draft, published string
		isDraft, root        bool
		release, base        string
	}{
		{"abc", "drafts.abc", "abc", false, true, "", ""},
		{"drafts.abc", "drafts.abc", "abc", true, false, "", ""},
		{"versions.r1.abc", "drafts.abc", "abc", false, false, "r1", "abc"},
		{"versions.r1.a.b", "drafts.a.b", "a.b", false, false, "r1", "a.b"},
		{"versions.r1", "drafts.versions.r1", "versions.r1", false, false, "", ""},
		{"secret.settings", "drafts.secret.settings", "secret.settings", false, false, "", ""},
		{"draftsabc", "drafts.draftsabc", "draftsabc", false, true, "", ""},
	}
	for _, tt := range tests {
		if got := DraftID(tt.id); got != tt.draft {
			t.Errorf("DraftID(%q) = %q, want %q", tt.id, got, tt.draft)
		}
		if got := PublishedID(tt.id); got != tt.published {
			t.Errorf("PublishedID(%q) = %q, want %q", tt.id, got, tt.published)
		}
		if got := IsDraft(tt.id); got != tt.isDraft {
			t.Errorf("IsDraft(%q) = %v", tt.id, got)
		}
		if got := IsRoot(tt.id); got != tt.root {
			t.Errorf("IsRoot(%q) = %v", tt.id, got)
		}
		r, b, ok := Version(tt.id)
		if r != tt.release || b != tt.base || ok != (tt.release != "") {
			t.Errorf("Version(%q) = %q, %q, %v", tt.id, r, b, ok)
		}
	}
}

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	counts := map[byte]int{}
	for i := 0; i < 10000; i++ {
		id := New()
		if len(id) != NewLength {
			t.Fatalf("New() = %q: length %d", id, len(id))
		}
		if err := Validate(id); err != nil {
			t.Fatalf("New() = %q: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("New() repeated %q", id)
		}
		seen[id] = true
		for j := 0; j < len(id); j++ {
			counts[id[j]]++
		}
	}
	// 220,000 characters over 62 symbols: about 3548 each. Every symbol
	// must occur, none wildly more often than the others.
	if len(counts) != 62 {
		t.Fatalf("New used %d distinct characters, want 62", len(counts))
	}
	for c, n := range counts {
		if n < 3000 || n > 4100 {
			t.Errorf("character %q occurs %d times in 220000, want about 3548", c, n)
		}
	}
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		New()
	}
}

func BenchmarkValidate(b *testing.B) {
	id := "versions.r1." + New()
	for b.Loop() {
		if Validate(id) != nil {
			b.Fatal("invalid")
		}
	}
}
