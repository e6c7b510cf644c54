// Package store owns the cloud's database: the GORM models, opening SQLite in
// WAL mode, and the migrations that run at start. The database is the source
// of truth; HAProxy maps, tc classes and SSH sessions are derived from it.
package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ErrDuplicate is returned (wrapped) when a unique constraint rejects a write.
// It is what keeps parallel requests from double-assigning a slot, port, host
// or domain: checks inside transactions give good messages, constraints give
// the guarantee.
var ErrDuplicate = gorm.ErrDuplicatedKey

// DB is the cloud's database handle.
type DB struct {
	*gorm.DB
}

// Open opens (creating if needed) the SQLite database at path with WAL,
// foreign keys, a busy timeout and IMMEDIATE write transactions, then runs the
// migrations.
func Open(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	// _txlock=immediate takes the write lock at BEGIN, so two transactions never
	// both read, then both try to upgrade and deadlock into SQLITE_BUSY.
	dsn := "file:" + path + "?_journal_mode=WAL&_busy_timeout=15000&_foreign_keys=on&_txlock=immediate&_synchronous=NORMAL"
	g, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{
		TranslateError: true,
		Logger:         logger.Discard,
		NowFunc:        func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	})
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db := &DB{g.WithContext(ctx)}
	if err := db.migrate(); err != nil {
		return nil, fmt.Errorf("migrate database %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, err
	}
	return db, nil
}

// Close releases the database.
func (db *DB) Close() error {
	sqlDB, err := db.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Tx runs fn in one write transaction.
func (db *DB) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return db.WithContext(ctx).Transaction(fn)
}

// IsDuplicate reports whether err comes from a unique constraint.
func IsDuplicate(err error) bool {
	return errors.Is(err, gorm.ErrDuplicatedKey) || (err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed"))
}

// IsNotFound reports whether err means no row matched.
func IsNotFound(err error) bool { return errors.Is(err, gorm.ErrRecordNotFound) }
