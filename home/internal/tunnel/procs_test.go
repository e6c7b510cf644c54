package tunnel_test

import (
	"runtime"
	"testing"

	"homeport.dev/home/internal/tunnel"
)

// TestAgentRunsOnOneProcessorUnlessTold: the agent takes AgentProcs, and
// a GOMAXPROCS the user set wins.
func TestAgentRunsOnOneProcessorUnlessTold(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(2)
	t.Setenv("GOMAXPROCS", "")
	tunnel.UseAgentProcs()
	if got := runtime.GOMAXPROCS(0); got != tunnel.AgentProcs {
		t.Errorf("GOMAXPROCS %d, want %d", got, tunnel.AgentProcs)
	}
	runtime.GOMAXPROCS(2)
	t.Setenv("GOMAXPROCS", "2")
	tunnel.UseAgentProcs()
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("GOMAXPROCS=2 in the environment: %d", got)
	}
}
