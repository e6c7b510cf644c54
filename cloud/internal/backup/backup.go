// Package backup owns `cloud backup`: a consistent copy of the cloud's
// database, taken while the cloud runs.
package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	// The driver gorm.io/driver/sqlite registers; the cloud's own.
	_ "github.com/mattn/go-sqlite3"
)

// Database writes a snapshot of the SQLite database at db to output (mode
// 0600), safe while a cloud is writing it: SQLite's VACUUM INTO reads one
// transaction's view (WAL readers never block the writer, nor the writer
// them) and writes a compact, self-contained database file. The snapshot is
// built under a temporary name, checked with PRAGMA integrity_check, and
// only then appears under output; an existing output is never overwritten.
func Database(ctx context.Context, db, output string) error {
	if _, err := os.Stat(db); err != nil {
		return fmt.Errorf("no database to back up: %w (is --data the cloud's data directory?)", err)
	}
	if _, err := os.Lstat(output); err == nil {
		return fmt.Errorf("%s already exists; choose another --output (a backup never overwrites a file)", output)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".tmp-*") // 0600
	if err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath) // after the link below, output keeps the data
	if err := tmp.Close(); err != nil {
		return err
	}
	// mode=ro: a backup never creates, migrates or writes the live database.
	src, err := sql.Open("sqlite3", uri(db, "mode=ro&_busy_timeout=15000"))
	if err != nil {
		return err
	}
	defer src.Close()
	// VACUUM INTO writes only into a missing or empty file: the temp file is empty.
	if _, err := src.ExecContext(ctx, "VACUUM INTO ?", tmpPath); err != nil {
		return fmt.Errorf("snapshot %s: %w", db, err)
	}
	if err := verify(ctx, tmpPath); err != nil {
		return fmt.Errorf("the snapshot of %s failed its check: %w", db, err)
	}
	if err := os.Chmod(tmpPath, 0o600); err != nil {
		return err
	}
	// A hard link, unlike a rename, refuses to replace a file made meanwhile.
	if err := os.Link(tmpPath, output); err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	return nil
}

// verify syncs the snapshot to disk and runs SQLite's integrity check on it.
func verify(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite3", uri(path, "mode=ro"))
	if err != nil {
		return err
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&result); err != nil {
		return err
	}
	if result != "ok" {
		return errors.New(result)
	}
	return nil
}

// uri is an SQLite URI for path, escaped so that no character of the path
// ('?', '#', '%') is read as part of the query.
func uri(path, query string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return (&url.URL{Scheme: "file", Path: path, RawQuery: query}).String()
}
