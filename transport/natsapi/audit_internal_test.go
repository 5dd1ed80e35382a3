package natsapi

import "testing"

func TestProgressSubjectMustBeTheCallersInbox(t *testing.T) {
	for _, tt := range []struct {
		progress, reply string
		ok              bool
	}{
		{"_INBOX.abc.def.p1", "_INBOX.abc.def.r1", true},
		{"_INBOX.abc.p1", "_INBOX.abc.r1", true},
		{"_INBOX.other.p1", "_INBOX.abc.r1", false},
		{"_INBOX.abc.p1.x", "_INBOX.abc.r1", false},
		{"_INBOX.abc.*", "_INBOX.abc.r1", false},
		{"_INBOX.abc.>", "_INBOX.abc.r1", false},
		{"vellum.v1.datasets.create", "_INBOX.abc.r1", false},
		{"x.p1", "x.r1", false}, // a reply subject that is not an inbox
	} {
		err := checkProgressSubject(tt.progress, tt.reply)
		if (err == nil) != tt.ok {
			t.Errorf("progress %q for reply %q: %v, want ok %v", tt.progress, tt.reply, err, tt.ok)
		}
	}
}
