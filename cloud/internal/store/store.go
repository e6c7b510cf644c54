// Package store owns the cloud's database: the GORM models, opening SQLite in
// WAL mode (or PostgreSQL, for several cloud nodes), and the versioned
// migrations (package migrations) that run at start. The database is the source of truth; HAProxy maps, tc classes
// and SSH sessions are derived from it.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"homeport.dev/cloud/internal/store/migrations"
)

// ErrDuplicate is returned (wrapped) when a unique constraint rejects a write.
// It is what keeps parallel requests from double-assigning a slot, port, host
// or domain: checks inside transactions (after a Guard) give good messages,
// constraints give the guarantee.
var ErrDuplicate = gorm.ErrDuplicatedKey

// DB is the cloud's database handle.
type DB struct {
	*gorm.DB
}

// postgresConns caps one node's connections, so several cloud nodes fit in
// PostgreSQL's default max_connections (100).
const postgresConns = 20

// sqliteConns caps the SQLite connections: unbounded, a reconnect storm of
// 10,000 homes opened one per login in flight (9,267: two descriptors, a
// page cache and a thread blocked in cgo each; 2.8 GiB RSS), and they
// stayed open.
const sqliteConns = 16

// IsPostgres reports whether dsn names a PostgreSQL database
// (postgres://... or postgresql://...) rather than a SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Redacted is dsn fit for a message: a URL's password is replaced by xxxxx.
func Redacted(dsn string) string {
	if !IsPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "the database URL (which does not parse)"
	}
	return u.Redacted()
}

// Open opens the database and applies the pending migrations (package
// migrations); a database a newer cloud migrated is refused
// (migrations.ErrNewer). dsn is a PostgreSQL URL
// (postgres://user:password@host/db) or the path of a SQLite file, created if
// needed, opened with WAL, foreign keys, a busy timeout and IMMEDIATE write
// transactions.
func Open(ctx context.Context, dsn string) (*DB, error) {
	db, err := OpenUnmigrated(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if _, err := migrations.Up(ctx, db.DB, slog.Default()); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", Redacted(dsn), err)
	}
	return db, nil
}

// OpenUnmigrated opens the database as Open does but leaves its schema as
// it is: for `cloud migrate`, which shows and applies the migrations itself.
func OpenUnmigrated(ctx context.Context, dsn string) (*DB, error) {
	cfg := &gorm.Config{
		TranslateError: true,
		Logger:         logger.Discard,
		NowFunc:        func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	var dialector gorm.Dialector
	name := Redacted(dsn)
	if IsPostgres(dsn) {
		dialector = postgres.Open(dsn)
	} else {
		if err := secureFiles(dsn); err != nil {
			return nil, err
		}
		// _txlock=immediate takes the write lock at BEGIN, so two transactions never
		// both read, then both try to upgrade and deadlock into SQLITE_BUSY.
		dialector = sqlite.Open("file:" + dsn + "?_journal_mode=WAL&_busy_timeout=15000&_foreign_keys=on&_txlock=immediate&_synchronous=NORMAL")
	}
	g, err := gorm.Open(dialector, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", name, err)
	}
	if sqlDB, err := g.DB(); err == nil {
		if IsPostgres(dsn) {
			sqlDB.SetMaxOpenConns(postgresConns)
		} else {
			sqlDB.SetMaxOpenConns(sqliteConns)
		}
	}
	return &DB{g.WithContext(ctx)}, nil
}

// secureFiles makes the database's directory owner-only (0700) and the
// database file 0600 before SQLite opens it, also when the operator made
// the directory beforehand (a compose volume or `mkdir` starts 0755). SQLite
// gives the -wal and -shm files it creates the database file's mode, so
// they are 0600 from their first byte; ones left looser by an older
// version are tightened too.
func secureFiles(path string) error {
	if err := SecureDir(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("database %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := tighten(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("database file %s: %w", p, err)
		}
	}
	return nil
}

// SecureDir creates the data directory owner-only (0700), or makes it so.
// It holds the SSH host key and certificates also when the database is a
// PostgreSQL server's.
func SecureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if err := tighten(dir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: %w (it must be owned by the user the cloud runs as)", dir, err)
	}
	return nil
}

// tighten sets mode on path when it is not exactly that already.
func tighten(path string, mode fs.FileMode) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode().Perm() == mode {
		return nil
	}
	return os.Chmod(path, mode)
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

// IsDuplicate reports whether err comes from a unique constraint, on either
// engine (TranslateError maps SQLite's and PostgreSQL's 23505 to
// gorm.ErrDuplicatedKey; the text match catches an untranslated SQLite one).
func IsDuplicate(err error) bool {
	return errors.Is(err, gorm.ErrDuplicatedKey) || (err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed"))
}

// IsNotFound reports whether err means no row matched.
func IsNotFound(err error) bool { return errors.Is(err, gorm.ErrRecordNotFound) }
