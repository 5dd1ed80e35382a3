package gcfloor

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const MiB = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		base, want  int
	}{
		{live: 4 * MiB, floor: 64 * MiB, base: 100, want: 1500},  // next cycle at 64 MiB
		{live: 32 * MiB, floor: 64 * MiB, base: 100, want: 100},  // GOGC alone reaches the floor
		{live: 200 * MiB, floor: 64 * MiB, base: 100, want: 100}, // far above it
		{live: 16 * MiB, floor: 64 * MiB, base: 200, want: 300},  // base 200 reaches 48 MiB only
		{live: 100, floor: 64 * MiB, base: 100, want: maxPercent},
		{live: 0, floor: 64 * MiB, base: 100, want: maxPercent},
	} {
		if got := percent(c.live, c.floor, c.base); got != c.want {
			t.Errorf("percent(live %d, floor %d, base %d) = %d, want %d", c.live, c.floor, c.base, got, c.want)
		}
	}
}

// gogc reads the GOGC in effect from the runtime's metrics.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// waitGOGC runs collections until GOGC satisfies ok (the tuner adjusts it
// from a finalizer, after a cycle) or 10 seconds pass.
func waitGOGC(t *testing.T, ok func(int) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(gogc()) {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d after 10 s of collections, want %s", gogc(), what)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// TestStart runs the tuner in this process: with a small live heap it
// raises GOGC so that the goal reaches the floor, with a live heap above
// the floor it leaves the base GOGC, and stop restores the base.
func TestStart(t *testing.T) {
	base := gogc()
	if base != 100 {
		t.Skipf("GOGC is %d in this environment; the test expects the default 100", base)
	}
	const floor = 256 << 20
	stop := Start(floor)
	defer stop()
	waitGOGC(t, func(p int) bool { return p > 500 }, "above 500 for a live heap of a few MiB and a 256 MiB floor")

	// A live heap of 300 MiB (pointer-free, cheap to mark) is above the
	// floor: the base GOGC paces the collector again.
	big := make([]byte, 300<<20)
	waitGOGC(t, func(p int) bool { return p == base }, "the base 100 for a live heap above the floor")
	runtime.KeepAlive(big)
	big = nil
	waitGOGC(t, func(p int) bool { return p > 500 }, "above 500 once the large heap is garbage")

	stop()
	if got := gogc(); got != base {
		t.Errorf("GOGC is %d after stop, want %d", got, base)
	}
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if got := gogc(); got != base {
		t.Errorf("GOGC is %d after stop and a collection, want %d", got, base)
	}
}

func TestStartDisabled(t *testing.T) {
	base := gogc()
	Start(0)()
	runtime.GC()
	if got := gogc(); got != base {
		t.Errorf("Start(0) changed GOGC from %d to %d", base, got)
	}
}
