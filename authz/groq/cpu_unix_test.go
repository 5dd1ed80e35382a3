//go:build unix

package groq_test

import "syscall"

// processCPU is the CPU time (user and system) the process has used, in
// nanoseconds, as node's process.cpuUsage reports it for bench.mjs.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
