package serve_test

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"homeport.dev/cloud/internal/check"
	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/serve"
)

// TestDataDirMadeBeforehandIsTightened: an operator (or a compose volume)
// creates the data directory 0755 before the first start; the cloud makes it
// 0700 and its database, -wal and -shm files 0600, so `cloud check` (the
// compose healthcheck) passes on a fresh install instead of failing forever.
func TestDataDirMadeBeforehandIsTightened(t *testing.T) {
	data := filepath.Join(t.TempDir(), "homeport")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	cfg, err := config.Parse([]string{"--data", data, "--dev", "--haproxy", "off", "--shape-dev", "off", "--public-host", "cloud.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := serve.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	// The database is open (and migrated): its WAL and shared-memory index exist.
	want := map[string]fs.FileMode{
		data:                  0o700,
		cfg.DBPath():          0o600,
		cfg.DBPath() + "-wal": 0o600,
		cfg.DBPath() + "-shm": 0o600,
		cfg.HostKeyPath():     0o600,
	}
	for path, mode := range want {
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s has mode %o, want %o", path, st.Mode().Perm(), mode)
		}
	}
	for _, f := range check.Run(context.Background(), cfg) {
		t.Errorf("cloud check: %s (fix: %s)", f.What, f.Fix)
	}
}
