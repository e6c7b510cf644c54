package cloudtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var built struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// Binary builds the `cloud` command once per test process and returns its
// path, for tests that need a real separate process (a CLI run beside a
// serving cloud, resource limits of its own).
func Binary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "cloud-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "cloud")
		built.out, built.err = exec.Command("go", "build", "-o", built.path, "homeport.dev/cloud/cmd/cloud").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("building the cloud binary: %v\n%s", built.err, built.out)
	}
	return built.path
}

// RemoveBinary deletes what Binary built (call it from TestMain).
func RemoveBinary() {
	if built.path != "" {
		os.RemoveAll(filepath.Dir(built.path))
	}
}
