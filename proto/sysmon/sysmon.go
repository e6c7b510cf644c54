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
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// Setting is what KeepPolling adds to GODEBUG.
const Setting = "schedtrace=2147483647"

// KeepPolling runs the process again in place (execve: same process ID,
// name, arguments, environment and open descriptors) with Setting added to
// GODEBUG, unless GODEBUG already sets schedtrace (GODEBUG=schedtrace=0
// keeps Go's default) or the system is not Linux. It returns only if it
// did not run the process again, with the error if execve failed. Call it
// first in a long-running command, before it opens or starts anything.
func KeepPolling() error {
	if runtime.GOOS != "linux" {
		return nil
	}
	if setsSchedtrace(os.Getenv("GODEBUG")) {
		keepName()
		return nil
	}
	return syscall.Exec("/proc/self/exe", os.Args, withSetting(os.Environ()))
}

// keepName gives the process run again its name back: the kernel names a
// process after the file it runs, and that was /proc/self/exe, so ps -e,
// top, pgrep and pkill would see "exe" instead of "cloud" or "home". The
// name is that of argv[0], as the kernel had it from the command's path.
// Every thread is renamed (threads started later take their creator's
// name), over again while a new one still has the old name.
func keepName() {
	name := filepath.Base(os.Args[0])
	if name == ranAs || len(name) == 0 {
		return
	}
	for range 3 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return
		}
		renamed := false
		for _, t := range tasks {
			comm := filepath.Join("/proc/self/task", t.Name(), "comm")
			if b, err := os.ReadFile(comm); err == nil && strings.TrimSuffix(string(b), "\n") == ranAs {
				os.WriteFile(comm, []byte(name), 0) // the kernel keeps the first 15 bytes
				renamed = true
			}
		}
		if !renamed {
			return
		}
	}
}

// ranAs is the name the kernel gives a process that runs /proc/self/exe.
const ranAs = "exe"

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
