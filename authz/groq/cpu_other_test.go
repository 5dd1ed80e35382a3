//go:build !unix

package groq_test

// processCPU is not measured here: BenchmarkVsGroqJS reports wall time only.
func processCPU() int64 { return 0 }
