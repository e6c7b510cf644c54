package backup_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"homeport.dev/cloud/internal/backup"
	"homeport.dev/cloud/internal/store"
)

// TestBackupWhileWritingRestores: a backup taken while the cloud keeps
// writing is a 0600 file that, put in place as a new data directory's
// cloud.db, opens with every row committed before the backup started.
func TestBackupWhileWritingRestores(t *testing.T) {
	ctx := context.Background()
	live := filepath.Join(t.TempDir(), "data", "cloud.db")
	db, err := store.Open(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	addUser := func(i int) error {
		return db.Create(&store.User{Username: fmt.Sprintf("user%d", i), Email: "u@example.com", PasswordHash: "x", Role: "user"}).Error
	}
	const before = 200
	for i := range before {
		if err := addUser(i); err != nil {
			t.Fatal(err)
		}
	}
	// The writer keeps committing while the backup runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var writeErr error
	go func() {
		defer wg.Done()
		for i := before; i < before+5000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if writeErr = addUser(i); writeErr != nil {
				return
			}
		}
	}()
	out := filepath.Join(t.TempDir(), "cloud-backup.db")
	err = backup.Database(ctx, live, out)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if writeErr != nil {
		t.Fatalf("the cloud could not write during the backup: %v", writeErr)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %o, want 600", st.Mode().Perm())
	}
	if err := backup.Database(ctx, live, out); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second backup to the same file: %v, want a refusal", err)
	}

	// Restore: the copy becomes a fresh data directory's database.
	restored := filepath.Join(t.TempDir(), "data", "cloud.db")
	if err := os.MkdirAll(filepath.Dir(restored), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(restored, b, 0o600); err != nil {
		t.Fatal(err)
	}
	rdb, err := store.Open(ctx, restored)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	var n int64
	if err := rdb.Model(&store.User{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n < before {
		t.Errorf("restored database has %d users, want at least the %d written before the backup", n, before)
	}
	var u store.User
	if err := rdb.Where("username = ?", "user199").First(&u).Error; err != nil {
		t.Errorf("user199 not in the restored database: %v", err)
	}
	t.Logf("backup taken with %d rows committed; the cloud kept writing during it", n)
}

// TestBackupRefusesMissingDatabase: a wrong --data is an error, and no empty
// database or backup file is created.
func TestBackupRefusesMissingDatabase(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "b.db")
	if err := backup.Database(context.Background(), filepath.Join(dir, "nope", "cloud.db"), out); err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); err == nil {
		t.Error("the backup created the missing data directory")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}
