package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/store/migrations"
)

// TestMigrateShowsAndApplies: `cloud migrate` lists every version pending on
// a new database, `cloud migrate up` applies them, and status then says up
// to date; a database a newer cloud migrated is refused by name.
func TestMigrateShowsAndApplies(t *testing.T) {
	bin := cloudtest.Binary(t)
	data := filepath.Join(t.TempDir(), "data")
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append([]string{"migrate", "--data", data}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := run()
	if err != nil || !strings.Contains(out, "00001    baseline") || !strings.Contains(out, "pending") || !strings.Contains(out, "run `cloud migrate up`") {
		t.Fatalf("status of a new database: %v\n%s", err, out)
	}
	if out, err = run("up"); err != nil || !strings.Contains(out, "applied 00001 baseline") || !strings.Contains(out, "up to date") {
		t.Fatalf("migrate up: %v\n%s", err, out)
	}
	if out, err = run("status"); err != nil || strings.Contains(out, "pending") || !strings.Contains(out, "up to date") {
		t.Fatalf("status after up: %v\n%s", err, out)
	}
	db := filepath.Join(data, "cloud.db")
	if out, err := exec.Command("sqlite3", db, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, 1)").CombinedOutput(); err != nil {
		t.Skipf("sqlite3 CLI: %v %s", err, out)
	}
	if out, err = run("up"); err == nil || !strings.Contains(out, migrations.ErrNewer.Error()) {
		t.Errorf("migrate up on a newer database: %v\n%s", err, out)
	}
}
