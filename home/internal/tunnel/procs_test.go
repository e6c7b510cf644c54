package tunnel_test

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"

	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto/sysmon"
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

// TestCloudServeKeepsSysmonPolling: `cloud serve` runs itself again with
// Go's monitor thread kept from deep sleep (proto/sysmon), as the same
// process under the same name.
func TestCloudServeKeepsSysmonPolling(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	pid, _ := c.Pids()
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(env, []byte(sysmon.Setting)) {
		t.Errorf("cloud serve (pid %d) runs without %s in GODEBUG", pid, sysmon.Setting)
	}
	// Run again, it keeps its name for ps -e, top and pgrep.
	if name, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || string(name) != "cloud\n" {
		t.Errorf("cloud serve (pid %d) is named %q, want cloud (%v)", pid, name, err)
	}
}
