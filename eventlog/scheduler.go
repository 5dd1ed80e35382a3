package eventlog

import (
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// scheduler is the store's Pebble compaction scheduler: Pebble's own
// (ConcurrencyLimitScheduler: as many compactions as the DB allows, granted
// when one finishes and every 100 ms), except that it grants none until
// Open has returned.
//
// Why: Open flushes the write-ahead log that an unclean stop left behind,
// the end of that flush schedules a compaction when L0 holds enough tables,
// and Open then waits for that compaction to finish before it returns (it
// lists the obsolete files only when none runs). After a write storm that
// compaction took 1.4 s of a 1.5 - 1.8 s reopen; held back, it runs right
// after Open instead, while the daemon serves.
type scheduler struct {
	db       pebble.DBForCompaction
	stop     chan struct{}
	stopOnce sync.Once
	poke     chan struct{}

	mu       sync.Mutex
	cond     *sync.Cond // signals the end of a grant
	opened   bool       // Open has returned: compactions may run
	closed   bool       // Unregister was called
	granting bool       // grant is running (grants are serialized)
	running  int        // compactions granted and not yet done
}

var _ pebble.CompactionScheduler = (*scheduler)(nil)

func newScheduler() *scheduler {
	s := &scheduler{stop: make(chan struct{}), poke: make(chan struct{}, 1)}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// Register implements pebble.CompactionScheduler.
func (s *scheduler) Register(_ int, db pebble.DBForCompaction) {
	s.db = db
	go s.granter()
}

// Unregister implements pebble.CompactionScheduler: no grant is made once it
// returns. Calling it again does nothing more.
func (s *scheduler) Unregister() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for s.granting {
		s.cond.Wait()
	}
}

// open lets compactions run (called once Open has returned).
func (s *scheduler) open() {
	s.mu.Lock()
	s.opened = true
	s.mu.Unlock()
	s.UpdateGetAllowedWithoutPermission()
}

// TrySchedule implements pebble.CompactionScheduler.
func (s *scheduler) TrySchedule() (bool, pebble.CompactionGrantHandle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opened || s.closed || s.db.GetAllowedWithoutPermission() <= s.running {
		return false, nil
	}
	s.running++
	return true, s
}

// UpdateGetAllowedWithoutPermission implements pebble.CompactionScheduler:
// it asks the granter to look for waiting compactions now.
func (s *scheduler) UpdateGetAllowedWithoutPermission() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// The CompactionGrantHandle of every compaction granted.
func (s *scheduler) Started()                                          {}
func (s *scheduler) MeasureCPU(pebble.CompactionGoroutineKind)         {}
func (s *scheduler) CumulativeStats(pebble.CompactionGrantHandleStats) {}

// Done ends a compaction and grants the next ones waiting, if any.
func (s *scheduler) Done() {
	s.mu.Lock()
	s.running--
	s.mu.Unlock()
	s.grant()
}

// granter grants waiting compactions every 100 ms and when poked, until
// Unregister.
func (s *scheduler) granter() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-s.poke:
		case <-s.stop:
			return
		}
		s.grant()
	}
}

// grant starts as many waiting compactions as the DB allows beyond those
// running. Grants run one at a time, in turn.
func (s *scheduler) grant() {
	s.mu.Lock()
	for s.granting && !s.closed {
		s.cond.Wait()
	}
	if !s.opened || s.closed {
		s.mu.Unlock()
		return
	}
	n := s.db.GetAllowedWithoutPermission() - s.running
	if n <= 0 {
		s.mu.Unlock()
		return
	}
	s.granting = true
	s.mu.Unlock()
	// The DB is asked for a compaction only when one can be granted, so
	// that none it picks is wasted.
	for ; n > 0; n-- {
		if waiting, _ := s.db.GetWaitingCompaction(); !waiting || !s.db.Schedule(s) {
			break
		}
		s.mu.Lock()
		s.running++
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.granting = false
	s.cond.Broadcast()
	s.mu.Unlock()
}
