// Package sysmon keeps the Go runtime's monitor thread (sysmon) of a
// long-running homeport process polling instead of sleeping deeply.
//
// When every processor of a Go program is idle, sysmon sleeps until the
// next system call wakes it, and then polls every 20 µs until the program
// is idle again. A tunnel endpoint goes idle and busy again several times
// per connection it relays, so its sysmon woke tens of thousands of times
// a second: 10-15 % of the cloud's and the agent's CPU per new connection
// in `perf` (runtime.sysmon, usleep). Go has no setting for that but one
// side effect: with GODEBUG=schedtrace=N (print the scheduler's state
// every N ms) sysmon never sleeps deeply, and once nothing is left for it
// to do it backs off to one wake-up every 10 ms. N is the largest value,
// about 24.9 days, so the line is printed (to standard error) only when
// the machine has been up that long, once at start and then every 24.9
// days; a crash also prints the scheduler's state before its stack traces.
package sysmon

import (
	"os"
	"runtime"
	"strings"
	"syscall"
)

// Setting is what KeepPolling adds to GODEBUG.
const Setting = "schedtrace=2147483647"

// KeepPolling runs the process again in place (execve: same process ID,
// arguments, environment and open descriptors) with Setting added to
// GODEBUG, unless GODEBUG already sets schedtrace (GODEBUG=schedtrace=0
// keeps Go's default) or the system is not Linux. It returns only if it
// did not run the process again, with the error if execve failed. Call it
// first in a long-running command, before it opens or starts anything.
func KeepPolling() error {
	if runtime.GOOS != "linux" || setsSchedtrace(os.Getenv("GODEBUG")) {
		return nil
	}
	return syscall.Exec("/proc/self/exe", os.Args, withSetting(os.Environ()))
}

// setsSchedtrace reports whether godebug (a GODEBUG value) sets
// schedtrace, to any value: the operator's choice stands.
func setsSchedtrace(godebug string) bool {
	for _, kv := range strings.Split(godebug, ",") {
		if strings.HasPrefix(strings.TrimSpace(kv), "schedtrace=") {
			return true
		}
	}
	return false
}

// withSetting is env with Setting added to its GODEBUG.
func withSetting(env []string) []string {
	out := make([]string, 0, len(env)+1)
	godebug := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			godebug = v
			continue
		}
		out = append(out, kv)
	}
	if godebug != "" {
		godebug += ","
	}
	return append(out, "GODEBUG="+godebug+Setting)
}
