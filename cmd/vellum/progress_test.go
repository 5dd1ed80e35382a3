package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestProgressPlainLines(t *testing.T) {
	type step struct {
		after time.Duration // clock advance before Set
		n     int64
	}
	tests := []struct {
		name  string
		total int64
		steps []step
		want  []string
	}{
		{
			name:  "known total: a line per interval with rate and ETA, then a summary",
			total: 1000,
			steps: []step{{time.Second, 100}, {time.Second, 250}, {time.Second, 300}, {2 * time.Second, 500}},
			want: []string{
				"verify: 250/1000 events (25.0%), 125 events/s, ETA 6s",
				"verify: 500/1000 events (50.0%), 100 events/s, ETA 5s",
				"verify: done, 500 events in 5s, 100 events/s",
			},
		},
		{
			name:  "unknown total: count and rate only",
			total: 0,
			steps: []step{{3 * time.Second, 600}},
			want: []string{
				"verify: 600 events, 200 events/s",
				"verify: done, 600 events in 3s, 200 events/s",
			},
		},
		{
			name:  "faster than the interval: only the summary",
			total: 10,
			steps: []step{{100 * time.Millisecond, 5}, {100 * time.Millisecond, 10}},
			want:  []string{"verify: done, 10 events in 200ms, 50 events/s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			p := newPlainProgress(&buf, "verify", "events", tt.total)
			p.now = clock.now
			p.start, p.last = clock.t, clock.t
			for _, s := range tt.steps {
				clock.advance(s.after)
				p.Set(s.n)
			}
			p.Finish()
			p.Finish() // a second Finish writes nothing
			p.Set(1)   // nor does a Set after Finish
			got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestProgressAddAndNil(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, "import", "documents", 0) // a buffer is not a terminal
	if p.bar != nil {
		t.Fatal("a bytes.Buffer was taken for a terminal")
	}
	p.Add(3)
	p.Add(4)
	if p.n != 7 {
		t.Errorf("after Add(3), Add(4): n = %d, want 7", p.n)
	}
	p.Finish()
	if !strings.HasPrefix(buf.String(), "import: done, 7 documents in ") {
		t.Errorf("summary = %q", buf.String())
	}
	var none *progress // nil: every method is a no-op
	none.SetTotal(5)
	none.Set(1)
	none.Add(1)
	none.Finish()
}
