package sysmon

import (
	"fmt"
	"os"
	"os/exec"
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
		want    []string // the lines the helper prints, "PID" for its pid
	}{
		{"", []string{
			"start pid=PID GODEBUG=",
			"start pid=PID GODEBUG=" + Setting,
			"running pid=PID GODEBUG=" + Setting,
		}},
		{"madvdontneed=1", []string{
			"start pid=PID GODEBUG=madvdontneed=1",
			"start pid=PID GODEBUG=madvdontneed=1," + Setting,
			"running pid=PID GODEBUG=madvdontneed=1," + Setting,
		}},
		{"schedtrace=0", []string{
			"start pid=PID GODEBUG=schedtrace=0",
			"running pid=PID GODEBUG=schedtrace=0",
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
		want := strings.ReplaceAll(strings.Join(c.want, "\n")+"\n", "PID", pid)
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
