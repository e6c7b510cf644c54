package testnet

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// StrictEnv, set to 1 by deploy/test.sh (which installs every prerequisite
// first), turns a skip for a missing program into a failure: under the test
// command a test that cannot run is a broken test, not a skipped one.
const StrictEnv = "HOMEPORT_TEST_STRICT"

// SkipLogEnv names a file that every skip through this package appends one
// line to, so deploy/test.sh can say how many tests were skipped and why.
const SkipLogEnv = "HOMEPORT_TEST_SKIPLOG"

// SkipPrefix starts every skip message of this package, so skips are easy
// to find in `go test -v` output.
const SkipPrefix = "SKIPPED, NOT RUN: "

// RequireRoot skips the test when the process is not root, saying why it
// needs root. As root it returns, and whatever the test then cannot set up
// (a network namespace, a veth pair, a qdisc) must fail it, not skip it.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		skip(t, "needs root: "+why+" (run go test as root, as CI does)")
	}
}

// RequireCommand returns the path of the program name on PATH. When it is
// missing the test fails under HOMEPORT_TEST_STRICT=1 and is skipped
// otherwise, with install saying how to get it.
func RequireCommand(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, fmt.Sprintf("%s is not installed: %s", name, install))
	}
	return p
}

// Missing stops a test whose prerequisite (a program, a file) is absent:
// a failure under HOMEPORT_TEST_STRICT=1, a loud skip otherwise.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(StrictEnv) == "1" {
		t.Fatalf("%s=1 and a prerequisite is missing (deploy/install-deps.sh installs it): %s", StrictEnv, reason)
	}
	skip(t, reason)
}

func skip(t testing.TB, reason string) {
	t.Helper()
	if path := os.Getenv(SkipLogEnv); path != "" {
		// One short O_APPEND write per skip: lines from parallel test
		// processes do not interleave.
		if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			fmt.Fprintf(f, "%s: %s\n", t.Name(), reason)
			f.Close()
		}
	}
	t.Skip(SkipPrefix + reason)
}
