package serve

import (
	"os"
	"runtime"
)

// EdgeProcs is how many threads `cloud serve` runs Go code on at once
// (GOMAXPROCS) when it has n processors (the machine's, or its container's
// CPU limit): all but one, and at least one. The edge's HAProxy and the
// kernel's network stack work on every byte the cloud relays, about as
// much per byte as the cloud itself, and Go's scheduler spends a spare
// processor on threads that spin and sleep around each goroutine hand-off.
// Measured on 2 processors with the anchor bench (cd home && go test
// ./internal/tunnel -run '^$' -bench VersusOpenSSHD -benchtime 1x, with
// HOMEPORT_BENCH_CLOUD_PROCS=2 for the other setting, two alternating
// pairs): whole-path CPU per new connection 427-510 -> 387-410 µs, new
// connections 1,676-1,791 -> 1,839-1,879/s sequential and 3,462-3,960 ->
// 4,194-4,205/s with 16 workers; transfers, round trips and the fan-out
// did not move beyond the noise.
func EdgeProcs(n int) int { return max(1, n-1) }

// UseEdgeProcs sets GOMAXPROCS to EdgeProcs of the runtime's default unless
// the GOMAXPROCS environment variable is set, and returns the setting.
// Call it once, before serving.
func UseEdgeProcs() int {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	n := EdgeProcs(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(n)
	return n
}
