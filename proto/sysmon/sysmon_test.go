package sysmon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// helperEnv makes the test binary the helper process of
// TestKeepPollingRunsTheProcessAgainInPlace.
const helperEnv = "SYSMON_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		fmt.Printf("start pid=%d GODEBUG=%s\n", os.Getpid(), os.Getenv("GODEBUG"))
		if err := KeepPolling(); err != nil {
			fmt.Println("error:", err)
		}
		fmt.Printf("running pid=%d GODEBUG=%s\n", os.Getpid(), os.Getenv("GODEBUG"))
		fmt.Printf("names %s\n", threadNames())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestKeepPollingRunsTheProcessAgainInPlace: the process starts over with
// the setting added to GODEBUG, as the same process (a supervisor such as
// systemd keeps its PID); a GODEBUG that sets schedtrace is left alone.
func TestKeepPollingRunsTheProcessAgainInPlace(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("KeepPolling runs the process again on Linux only")
	}
	for _, c := range []struct {
		godebug string
		want    []string // the lines the helper prints, "PID" for its pid, "NAME" for its name
	}{
		{"", []string{
			"start pid=PID GODEBUG=",
			"start pid=PID GODEBUG=" + Setting,
			"running pid=PID GODEBUG=" + Setting,
			"names NAME",
		}},
		{"madvdontneed=1", []string{
			"start pid=PID GODEBUG=madvdontneed=1",
			"start pid=PID GODEBUG=madvdontneed=1," + Setting,
			"running pid=PID GODEBUG=madvdontneed=1," + Setting,
			"names NAME",
		}},
		{"schedtrace=0", []string{
			"start pid=PID GODEBUG=schedtrace=0",
			"running pid=PID GODEBUG=schedtrace=0",
			"names NAME",
		}},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
			return strings.HasPrefix(kv, "GODEBUG=")
		}), helperEnv+"=1", "GODEBUG="+c.godebug)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("GODEBUG=%q: %v\n%s", c.godebug, err, out)
		}
		pid := fmt.Sprint(cmd.Process.Pid)
		// The process and each of its threads keep the name of the
		// command (ps -e, top, pgrep), never "exe".
		want := strings.NewReplacer("PID", pid, "NAME", comm(os.Args[0])).Replace(strings.Join(c.want, "\n") + "\n")
		if string(out) != want {
			t.Errorf("GODEBUG=%q: the process printed\n%s\nwant\n%s", c.godebug, out, want)
		}
	}
}

// TestOperatorsSchedtraceStands: any schedtrace in GODEBUG, 0 included,
// is the operator's; other settings, scheddetail too, are not.
func TestOperatorsSchedtraceStands(t *testing.T) {
	for godebug, want := range map[string]bool{
		"":                              false,
		"madvdontneed=1":                false,
		"schedtrace=0":                  true,
		"madvdontneed=1,schedtrace=100": true,
		"scheddetail=1":                 false,
		" schedtrace=5":                 true,
	} {
		if got := setsSchedtrace(godebug); got != want {
			t.Errorf("setsSchedtrace(%q) = %v, want %v", godebug, got, want)
		}
	}
}

// threadNames lists the distinct names of the process's threads (from
// /proc/self/task/*/comm), sorted.
func threadNames() string {
	tasks, _ := os.ReadDir("/proc/self/task")
	var names []string
	for _, t := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + t.Name() + "/comm")
		names = append(names, strings.TrimSuffix(string(b), "\n"))
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ",")
}

// comm is the name the kernel gives a process that runs path: its base,
// cut to 15 bytes.
func comm(path string) string {
	name := filepath.Base(path)
	return name[:min(len(name), 15)]
}
