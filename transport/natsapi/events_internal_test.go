package natsapi

import (
	"strings"
	"testing"
)

// TestDecodeEventsPage: the events page's framing (a JSON header line,
// then each event as a uvarint length and its bytes) decodes to the events
// as sent, and a page that is cut off or disagrees with its header is a
// clear error.
func TestDecodeEventsPage(t *testing.T) {
	head := `{"dataset":"blog","to":9,"head":12,"aclMode":"public","count":2,"more":true}`
	for _, c := range []struct {
		name, data string
		want       []string // events, when the page is valid
		err        string
	}{
		{"two events", head + "\n\x03abc\x02de", []string{"abc", "de"}, ""},
		{"an empty page", `{"dataset":"blog","to":9,"head":12,"aclMode":"public","count":0,"more":false}` + "\n", []string{}, ""},
		{"no header line", head, nil, "first line is not its header"},
		{"a header that is not JSON", "{\n\x01a", nil, "first line is not its header"},
		{"an event cut off", head + "\n\x03abc\x05de", nil, "event 2 of the events page is cut off"},
		{"a length cut off", head + "\n\x03abc\x80", nil, "event 2 of the events page is cut off"},
		{"fewer events than announced", head + "\n\x03abc", nil, "holds 1 events, its header says 2"},
		{"more events than announced", head + "\n\x01a\x01b\x01c", nil, "holds 3 events, its header says 2"},
		{"a count that cannot fit", strings.Replace(head, `"count":2`, `"count":99`, 1) + "\n\x01a", nil, "announces 99 events in 2 bytes"},
	} {
		page, err := decodeEventsPage([]byte(c.data))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want an error saying %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var got []string
		for _, ev := range page.Events {
			got = append(got, string(ev))
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) || page.Dataset != "blog" || page.To != 9 || page.Head != 12 || page.ACL != "public" {
			t.Errorf("%s: %+v, events %q; want %q", c.name, page, got, c.want)
		}
	}
}
