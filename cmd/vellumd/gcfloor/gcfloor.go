// Package gcfloor keeps the Go garbage collector's heap goal above a floor,
// for a process whose live Go heap is small next to the memory it may use.
//
// vellumd is such a process: Pebble keeps its block cache and memtables
// outside the Go heap, so the live heap of a busy daemon is a few
// megabytes, and with GOGC=100 the collector runs every few megabytes of
// allocation (about 50 times a second under the mutation benchmark), each
// cycle with its fixed costs and its assists on the request path. A floor
// of 32 MiB makes cycles more than five times rarer (14 against 78 over
// 50,000 transactions through the service) for at most the floor's worth
// of extra memory. A higher floor is not better: the allocations then
// walk through more memory than the caches hold (a bare NATS echo in the
// same process cost 13-14 µs of CPU per request with GOGC=100, 15 with a
// 16 MiB floor, 17 with 32 or 64 MiB, while a transaction gained most at
// 32; see docs/architecture.md). Once the live heap is large enough (half
// the floor at GOGC=100), the floor has no effect and GOGC alone paces the
// collector.
//
// After each collection, Start's tuner sets GOGC so that the next one
// starts when the heap reaches max(floor, live × (1 + base/100)), base
// being the GOGC in effect when Start was called (the GOGC environment
// variable, or 100). The Go runtime offers a ceiling (GOMEMLIMIT) but no
// floor; this is the usual way to get one without a ballast allocation.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// DefaultFloor is vellumd's floor (--gc-heap-floor-mib).
const DefaultFloor = 32 << 20

// maxPercent bounds the GOGC the tuner sets, for a live heap of almost
// nothing (just after start).
const maxPercent = 10_000

// tuner holds the state of one Start.
type tuner struct {
	floor   uint64
	base    int
	stopped atomic.Bool
	mu      sync.Mutex // serializes adjust and stop
	sample  []metrics.Sample
}

// Start keeps the heap goal at least floor bytes until the returned
// function is called, which restores the GOGC that was in effect. It does
// nothing (and the function does nothing) when floor is 0 or the collector
// is off (GOGC=off). Only one Start should be in effect in a process.
func Start(floor uint64) (stop func()) {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if floor == 0 || base < 0 {
		return func() {}
	}
	t := &tuner{floor: floor, base: base, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.adjust()
	t.arm()
	return t.stop
}

// sentinel is garbage that the collector finalizes once per cycle: its
// finalizer adjusts GOGC and makes the next sentinel. It holds a pointer,
// so that it is not a tiny allocation (which may never be finalized).
type sentinel struct{ t *tuner }

func (t *tuner) arm() {
	runtime.SetFinalizer(&sentinel{t: t}, func(s *sentinel) {
		if s.t.stopped.Load() {
			return
		}
		s.t.adjust()
		s.t.arm()
	})
}

// percent returns the GOGC that puts the next collection at
// max(floor, live × (1 + base/100)).
func percent(live, floor uint64, base int) int {
	if live == 0 {
		return maxPercent
	}
	if live+live*uint64(base)/100 >= floor {
		return base
	}
	return min(maxPercent, int(floor*100/live)-100)
}

func (t *tuner) adjust() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped.Load() {
		return
	}
	metrics.Read(t.sample)
	live := uint64(0)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	debug.SetGCPercent(percent(live, t.floor, t.base))
}

func (t *tuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped.Swap(true) {
		return
	}
	debug.SetGCPercent(t.base)
}
