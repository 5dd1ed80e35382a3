package eventlog

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// fakeDB is a DBForCompaction with a number of compactions waiting.
type fakeDB struct {
	mu        sync.Mutex
	allowed   int
	waiting   int
	scheduled int
}

func (f *fakeDB) GetAllowedWithoutPermission() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.allowed
}

func (f *fakeDB) GetWaitingCompaction() (bool, pebble.WaitingCompaction) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiting > 0, pebble.WaitingCompaction{}
}

func (f *fakeDB) Schedule(pebble.CompactionGrantHandle) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waiting == 0 {
		return false
	}
	f.waiting--
	f.scheduled++
	return true
}

func (f *fakeDB) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.scheduled
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestScheduler checks the compaction scheduler: nothing is granted before
// open, then as many compactions as the DB allows, the next when one is
// done, and nothing after Unregister.
func TestScheduler(t *testing.T) {
	db := &fakeDB{allowed: 2, waiting: 3}
	s := newScheduler()
	s.Register(2, db)
	if ok, _ := s.TrySchedule(); ok {
		t.Fatal("TrySchedule granted a compaction before open")
	}
	s.UpdateGetAllowedWithoutPermission()
	time.Sleep(250 * time.Millisecond) // two ticks of the granter
	if n := db.count(); n != 0 {
		t.Fatalf("%d compactions granted before open", n)
	}

	s.open()
	waitUntil(t, "two compactions granted", func() bool { return db.count() == 2 })
	time.Sleep(150 * time.Millisecond)
	if n := db.count(); n != 2 {
		t.Fatalf("%d compactions running, the DB allows 2", n)
	}
	if ok, _ := s.TrySchedule(); ok {
		t.Fatal("TrySchedule granted a third compaction")
	}
	s.Done()
	waitUntil(t, "the next compaction after one is done", func() bool { return db.count() == 3 })

	s.Done() // none is waiting now: the slot stays free
	if ok, h := s.TrySchedule(); !ok || h == nil {
		t.Fatal("TrySchedule refused a compaction the DB allows")
	}
	s.Unregister()
	s.Unregister() // again: nothing more
	s.Done()
	s.Done()
	time.Sleep(150 * time.Millisecond)
	if n := db.count(); n != 3 {
		t.Fatalf("%d compactions granted, 3 before Unregister", n)
	}
	if ok, _ := s.TrySchedule(); ok {
		t.Fatal("TrySchedule granted a compaction after Unregister")
	}
}

// TestCompactionsRunAfterOpen checks that a store's compactions run once
// Open has returned.
func TestCompactionsRunAfterOpen(t *testing.T) {
	db, err := Open(t.TempDir(), &Options{MemTableSize: 256 << 10, L0CompactionThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	value := make([]byte, 1024)
	for i := range 4000 {
		if err := db.Pebble().Set([]byte(fmt.Sprintf("key-%08d", i)), value, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "a compaction", func() bool { return db.Pebble().Metrics().Compact.Count > 0 })
}
