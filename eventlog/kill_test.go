package eventlog

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The writer child: a re-executed test binary with these variables set
// writes events to the store and is killed by its parent.
const (
	envChildDir    = "VELLUM_EVENTLOG_CHILD_DIR"
	envChildEvents = "VELLUM_EVENTLOG_CHILD_EVENTS"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envChildDir); dir != "" {
		n, _ := strconv.Atoi(os.Getenv(envChildEvents))
		if err := runWriterChild(dir, n); err != nil {
			fmt.Fprintln(os.Stderr, "writer child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runWriterChild appends n events in large unsynced batches, syncs, prints
// "ready <head>", then keeps appending small synced batches (printing
// "synced <seq>" after each) until it is killed.
func runWriterChild(dir string, n int) error {
	db, err := Open(dir, nil)
	if err != nil {
		return err
	}
	l := db.Log(1)
	seq, hash, err := l.Head()
	if err != nil {
		return err
	}
	b := db.Pebble().NewBatchWithSize(20<<20, pebble.WithMaxRetainedSizeBytes(64<<20))
	appendOne := func() error {
		seq++
		ev := testEvent(seq, t0.Add(time.Duration(seq)*time.Millisecond))
		ev.PrevHash = hash
		if err := l.Append(b, ev); err != nil {
			return err
		}
		hash = ev.Hash
		return nil
	}
	for i := 0; i < n; i++ {
		if err := appendOne(); err != nil {
			return err
		}
		if b.Len() > 16<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Reset()
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	b.Reset()
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "ready %d\n", seq)
	out.Flush()
	for {
		for range 100 {
			if err := appendOne(); err != nil {
				return err
			}
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return err
		}
		b.Reset()
		fmt.Fprintf(out, "synced %d\n", seq)
		out.Flush()
	}
}

// killedWriter runs the writer child on dir with n events, lets it write
// synced batches for a moment after it is ready, SIGKILLs it, and returns
// the last sequence number it reported synced.
func killedWriter(tb testing.TB, dir string, n int) uint64 {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildDir+"="+dir, envChildEvents+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var synced uint64
	deadline := time.Time{}
	for lines.Scan() {
		var word string
		var seq uint64
		if _, err := fmt.Sscan(lines.Text(), &word, &seq); err != nil {
			tb.Fatalf("child said %q", lines.Text())
		}
		synced = seq
		if word == "ready" {
			deadline = time.Now().Add(100 * time.Millisecond)
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		tb.Fatal(err)
	}
	cmd.Wait()
	if synced == 0 {
		tb.Fatal("the writer child never became ready")
	}
	return synced
}

// reopen opens dir and reads the head and the head event, as a restarting
// daemon does.
func reopen(tb testing.TB, dir string) (*DB, uint64, time.Duration) {
	tb.Helper()
	start := time.Now()
	db, err := Open(dir, nil)
	if err != nil {
		tb.Fatal(err)
	}
	seq, hash, err := db.Log(1).Head()
	if err != nil {
		tb.Fatal(err)
	}
	ev, err := db.Log(1).Get(seq)
	if err != nil || ev.Hash != hash {
		tb.Fatalf("head event %d: %v", seq, err)
	}
	return db, seq, time.Since(start)
}

// TestReopenAfterKill SIGKILLs a writer process and checks that the store
// reopens with every synced event, a consistent head and a verified chain.
func TestReopenAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a writer process")
	}
	dir := t.TempDir()
	for round := range 3 {
		synced := killedWriter(t, dir, 20_000)
		db, seq, took := reopen(t, dir)
		t.Logf("round %d: synced %d, head after reopen %d, reopen %v", round, synced, seq, took)
		if seq < synced {
			db.Close()
			t.Fatalf("round %d: head %d, but the writer had synced %d", round, seq, synced)
		}
		n, err := db.Log(1).Verify(context.Background(), nil)
		db.Close()
		if err != nil || n != seq {
			t.Fatalf("round %d: Verify = %d, %v; want %d", round, n, err, seq)
		}
	}
}

// BenchmarkReopenAfterKill measures Open + Head + reading the head event
// of a store holding benchEvents events (1,000,000 by default) whose writer
// was SIGKILLed, next to a clean reopen of the same store (after Close).
func BenchmarkReopenAfterKill(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("VELLUM_BENCH_EVENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		start := time.Now()
		synced := killedWriter(b, dir, n)
		b.Logf("child wrote %d events in %v before the kill", synced, time.Since(start))
		b.StartTimer()
		db, seq, took := reopen(b, dir)
		b.StopTimer()
		if seq < synced {
			b.Fatalf("head %d < synced %d", seq, synced)
		}
		db.Close()
		db, _, clean := reopen(b, dir)
		db.Close()
		b.ReportMetric(float64(took.Microseconds())/1000, "ms/reopen")
		b.ReportMetric(float64(clean.Microseconds())/1000, "clean-ms/reopen")
		b.ReportMetric(float64(took)/float64(clean), "ratio")
	}
}
