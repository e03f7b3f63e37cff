package ops

import "syscall"

// cpuSeconds is the process's user and system CPU time: benchmarks report
// it beside wall time because on a shared machine the wall time of a
// multi-threaded kernel mostly measures the other processes.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
