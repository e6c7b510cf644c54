package serve_test

import (
	"runtime"
	"testing"

	"homeport.dev/cloud/internal/serve"
)

// TestEdgeLeavesAProcessor: the cloud runs Go code on all processors but
// one, never on none, and a GOMAXPROCS the operator set wins.
func TestEdgeLeavesAProcessor(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 1, 4: 3, 16: 15} {
		if got := serve.EdgeProcs(n); got != want {
			t.Errorf("EdgeProcs(%d) = %d, want %d", n, got, want)
		}
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(4)
	t.Setenv("GOMAXPROCS", "")
	if got := serve.UseEdgeProcs(); got != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("on 4 processors: UseEdgeProcs %d, GOMAXPROCS %d; want 3", got, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(4)
	t.Setenv("GOMAXPROCS", "4")
	if got := serve.UseEdgeProcs(); got != 4 || runtime.GOMAXPROCS(0) != 4 {
		t.Errorf("GOMAXPROCS=4 in the environment: UseEdgeProcs %d, GOMAXPROCS %d", got, runtime.GOMAXPROCS(0))
	}
}
