package tunnel

import (
	"os"
	"runtime"
)

// AgentProcs is how many threads the home agent runs Go code on at once
// (GOMAXPROCS), unless the GOMAXPROCS environment variable says otherwise.
// One: a home's tunnel is one SSH connection whose packets pass from the
// goroutine that reads the connection to the one that writes the local
// service, and with a second processor each of those hand-offs wakes
// another thread. Measured with the anchor bench (cd home && go test
// ./internal/tunnel -run '^$' -bench VersusOpenSSHD -benchtime 1x,
// HOMEPORT_BENCH_HOME_PROCS=2 for the other setting, two alternating
// pairs): the agent's CPU per GB received 0.77-0.79 s -> 0.59-0.64 s,
// upload 720-740 -> 800-805 MB/s, whole-path CPU per new connection -8 %;
// download on 4 streams fell from 790-840 to 740-750 MB/s, still above
// OpenSSH's 610-660 and far above what a home's uplink carries.
const AgentProcs = 1

// UseAgentProcs sets GOMAXPROCS to AgentProcs unless the environment sets
// it. The home command calls it first thing, for every subcommand.
func UseAgentProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(AgentProcs)
	}
}
