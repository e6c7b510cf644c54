package serve

import (
	"os"
	"runtime"
)

// EdgeProcs is how many threads `cloud serve` runs Go code on at once
// (GOMAXPROCS) when it has n processors (the machine's, or its container's
// CPU limit): all but one, and at least one. The edge's HAProxy and the
// kernel's network stack work on every byte the cloud relays (HAProxy
// alone about 0.4 s of CPU per GB, the cloud 0.55-0.8 s), and Go's
// scheduler spends a spare processor on threads that spin and sleep
// around each goroutine hand-off.
// Measured on 2 processors with the anchor bench's profiling modes, three
// alternating pairs each against HOMEPORT_BENCH_CLOUD_PROCS=2 (cd home &&
// HOMEPORT_BENCH_CHURN=5 go test ./internal/tunnel -run '^$' -bench
// VersusOpenSSHD -benchtime 1x): the cloud's CPU per new connection
// 247-271 -> 192-199 µs one after another (HOMEPORT_BENCH_WORKERS=1;
// 1,582-1,712 -> 1,768-1,832 conn/s) and 106-136 -> 99-119 µs with 16
// workers. Full runs of the bench showed no loss in transfers, round trips
// or the 500-home fan-out.
func EdgeProcs(n int) int { return max(1, n-1) }

// UseEdgeProcs sets GOMAXPROCS to EdgeProcs of the runtime's default unless
// the GOMAXPROCS environment variable is set, and returns the setting.
// Call it once, before serving. A container's CPU limit changed later is
// not followed (the runtime stops adjusting GOMAXPROCS once it is set):
// restart the cloud after changing it.
func UseEdgeProcs() int {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	n := EdgeProcs(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(n)
	return n
}
