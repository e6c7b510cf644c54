package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"homeport.dev/cloud/internal/store"
	"homeport.dev/cloud/internal/store/pgtest"
)

var pg = pgtest.New()

func TestMain(m *testing.M) { pg.Main(m) }

// TestOpenTightensFilesMadeBeforehand: a data directory made 0755 before the
// first start (by an operator or a compose volume) and database files left
// 0644 (by an older version) come out owner-only once the database is open.
func TestOpenTightensFilesMadeBeforehand(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	db := filepath.Join(data, "cloud.db")
	want := map[string]os.FileMode{data: 0o700, db: 0o600, db + "-wal": 0o600, db + "-shm": 0o600}
	open := func() {
		t.Helper()
		s, err := store.Open(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for p, mode := range want {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Mode().Perm(); got != mode {
				t.Errorf("%s: mode %o, want %o", p, got, mode)
			}
		}
	}
	loosen := func(p string, mode os.FileMode) {
		t.Helper()
		if err := os.Chmod(p, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}

	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	loosen(data, 0o755)
	open()

	s, err := store.Open(context.Background(), db) // keeps -wal and -shm while the next open runs
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	loosen(data, 0o755)
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		loosen(p, 0o644)
	}
	open()
}

// TestOpenEitherEngine: a SQLite path and a postgres:// URL both open, the
// migrations run again on an existing database without change, and a unique
// index's refusal reads as a duplicate on both engines.
func TestOpenEitherEngine(t *testing.T) {
	for _, e := range engines {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := e.DSN(t)
			for start := range 2 { // the second start migrates an existing schema
				db, err := store.Open(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				err = db.Create(&store.User{Username: "alice", Email: "alice@example.org", PasswordHash: "x", Role: "user"}).Error
				db.Close()
				switch {
				case start == 0 && err != nil:
					t.Fatal(err)
				case start == 1 && !store.IsDuplicate(err):
					t.Fatalf("a second alice: %v, want a duplicate", err)
				}
			}
		})
	}
}
