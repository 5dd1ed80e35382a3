package natsapi

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestRequestGoroutines checks how requests are spread on goroutines: each
// concurrent request gets one, idle ones take the next requests instead of
// new ones being started, and idle ones exit after a while (workerIdle)
// or when the server closes.
func TestRequestGoroutines(t *testing.T) {
	newServer := func(idle time.Duration) *Server {
		s := &Server{work: make(chan func()), idle: idle}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		t.Cleanup(s.cancel)
		return s
	}
	s := newServer(300 * time.Millisecond)
	workers := func() int { return int(s.workers.Load()) }

	// n requests that block until released run at once, each on its own
	// goroutine.
	const n = 40
	burst := func(s *Server) {
		t.Helper()
		release := make(chan struct{})
		var started, done sync.WaitGroup
		started.Add(n)
		done.Add(n)
		for range n {
			s.run(func() {
				started.Done()
				<-release
				done.Done()
			})
		}
		started.Wait()
		if got := workers(); got != n {
			t.Fatalf("%d request goroutines for %d requests at once", got, n)
		}
		close(release)
		done.Wait()
	}
	burst(s)
	time.Sleep(20 * time.Millisecond) // every goroutine waits for work
	burst(s)                          // on the same goroutines (checked in burst)
	if got := workers(); got != n {
		t.Fatalf("%d request goroutines are kept after the requests, want %d", got, n)
	}

	waitFor := func(what string, want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for workers() > want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d request goroutines left, want at most %d", what, workers(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("after the idle time", 0)

	// Closing ends the idle ones at once.
	s = newServer(time.Hour)
	burst(s)
	s.cancel()
	waitFor("after close", 0)
}
