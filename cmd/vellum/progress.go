package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressInterval is how often plain progress lines are written when the
// output is not a terminal.
const progressInterval = 2 * time.Second

// progress reports how far a long operation (verify, export, import, replay)
// has come, with its rate and the estimated time left.
//
// On a terminal it draws a progress bar (github.com/schollz/progressbar);
// otherwise (a file, a pipe, a CI log) it writes one plain line at most
// every interval, and a last line from Finish:
//
//	verify: 120000/1000000 events (12.0%), 251234 events/s, ETA 3.5s
//	verify: done, 1000000 events in 4.0s, 250000 events/s
//
// A progress is safe for concurrent use. Its methods do nothing on a nil
// *progress, so a command can pass nil for "no progress".
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	label    string // what is being done, e.g. "verify"
	unit     string // what is counted, e.g. "events"
	total    int64  // 0 or less: unknown
	n        int64
	start    time.Time
	last     time.Time     // when the last plain line was written
	interval time.Duration // between plain lines
	now      func() time.Time
	bar      *progressbar.ProgressBar // nil: plain lines
	done     bool
}

// newProgress starts reporting the progress of label, counted in unit (a
// plural noun), towards total (0 if unknown), on w. It draws a bar when w
// is a terminal and writes plain lines otherwise.
func newProgress(w io.Writer, label, unit string, total int64) *progress {
	p := newPlainProgress(w, label, unit, total)
	if isTerminal(w) {
		max := total
		if max <= 0 {
			max = -1 // the bar's "unknown length" (a spinner)
		}
		p.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(label),
			progressbar.OptionSetItsString(unit),
			progressbar.OptionShowIts(),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(30),
		)
	}
	return p
}

// newPlainProgress is newProgress that always writes plain lines.
func newPlainProgress(w io.Writer, label, unit string, total int64) *progress {
	p := &progress{w: w, label: label, unit: unit, total: total, interval: progressInterval, now: time.Now}
	p.start = p.now()
	p.last = p.start
	return p
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// SetTotal changes the amount the operation works towards (0: unknown).
func (p *progress) SetTotal(total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = total
	if p.bar != nil && total > 0 {
		p.bar.ChangeMax64(total)
	}
}

// Set records that n units are done so far.
func (p *progress) Set(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.n = n
	if p.bar != nil {
		_ = p.bar.Set64(n)
		return
	}
	if now := p.now(); now.Sub(p.last) >= p.interval {
		p.last = now
		fmt.Fprintln(p.w, p.line(now))
	}
}

// Add records that n more units are done.
func (p *progress) Add(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	cur := p.n
	p.mu.Unlock()
	p.Set(cur + n)
}

// Finish ends the report with a summary: the count, the time taken and the
// average rate. Later calls do nothing.
func (p *progress) Finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	if p.bar != nil {
		if p.total <= 0 {
			p.bar.ChangeMax64(max(p.n, 1))
		}
		_ = p.bar.Set64(p.n)
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
	elapsed := p.now().Sub(p.start)
	fmt.Fprintf(p.w, "%s: done, %d %s in %s, %s\n", p.label, p.n, p.unit, roundDuration(elapsed), p.rate(elapsed))
}

// line is one plain progress line as of now.
func (p *progress) line(now time.Time) string {
	elapsed := now.Sub(p.start)
	if p.total <= 0 {
		return fmt.Sprintf("%s: %d %s, %s", p.label, p.n, p.unit, p.rate(elapsed))
	}
	pct := 100 * float64(p.n) / float64(p.total)
	eta := "unknown"
	if p.n > 0 && elapsed > 0 {
		left := time.Duration(float64(elapsed) * float64(p.total-p.n) / float64(p.n))
		eta = roundDuration(max(left, 0)).String()
	}
	return fmt.Sprintf("%s: %d/%d %s (%.1f%%), %s, ETA %s", p.label, p.n, p.total, p.unit, pct, p.rate(elapsed), eta)
}

// rate is the average rate since the start, e.g. "251234 events/s".
func (p *progress) rate(elapsed time.Duration) string {
	if elapsed <= 0 {
		return "- " + p.unit + "/s"
	}
	return fmt.Sprintf("%.0f %s/s", float64(p.n)/elapsed.Seconds(), p.unit)
}

// roundDuration rounds d for display: to 0.1 s above a second, to
// milliseconds below.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
