package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/gorm"
)

// Migration is one step of the history: Up runs in one transaction (DDL is
// transactional on both engines), through GORM so that one function serves
// SQLite and PostgreSQL.
type Migration struct {
	Version int64
	Name    string
	Up      func(ctx context.Context, tx *gorm.DB) error
}

// All is the history, oldest first. Append only (see the package comment).
func All() []Migration {
	return []Migration{
		{1, "baseline", baseline},
		{2, "mapping_names", mappingNames},
		{3, "edges", edges},
	}
}

// Latest is the version this binary brings a database to.
func Latest() int64 {
	all := All()
	return all[len(all)-1].Version
}

// ErrNewer refuses a database migrated by a newer cloud: this binary would
// not know its columns' rules.
var ErrNewer = errors.New("the database was migrated by a newer cloud")

// Status is where a database stands.
type Status struct {
	Current int64 // the newest version applied; 0 on an empty database
	Latest  int64 // the newest this binary knows
	Steps   []Step
}

// Step is one migration's state in a database.
type Step struct {
	Version   int64
	Name      string
	AppliedAt time.Time // zero when pending
}

// Pending reports whether Up has work to do.
func (s Status) Pending() bool { return s.Current < s.Latest }

// Read returns the database's migration state without changing anything
// (goose creates its version table on first use: an empty one on a database
// never migrated).
func Read(ctx context.Context, db *gorm.DB) (Status, error) {
	p, err := provider(db)
	if err != nil {
		return Status{}, err
	}
	st := Status{Latest: Latest()}
	if st.Current, err = p.GetDBVersion(ctx); err != nil {
		return st, fmt.Errorf("read the schema version: %w", err)
	}
	states, err := p.Status(ctx)
	if err != nil {
		return st, fmt.Errorf("read the schema version: %w", err)
	}
	names := map[int64]string{}
	for _, m := range All() {
		names[m.Version] = m.Name
	}
	for _, s := range states {
		st.Steps = append(st.Steps, Step{Version: s.Source.Version, Name: names[s.Source.Version], AppliedAt: s.AppliedAt})
	}
	return st, nil
}

// Up applies every pending migration, in order, each in its own
// transaction; on PostgreSQL an advisory lock makes nodes that start
// together take turns (the later ones then find nothing to do). A database
// newer than this binary is refused with ErrNewer, unchanged.
func Up(ctx context.Context, db *gorm.DB, log *slog.Logger) ([]Step, error) {
	p, err := provider(db)
	if err != nil {
		return nil, err
	}
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the schema version: %w", err)
	}
	if current > Latest() {
		return nil, fmt.Errorf("%w: it is at version %d, this binary knows up to %d; run the newer cloud (every node of one database must run the same release)", ErrNewer, current, Latest())
	}
	// A new database is made quietly; an existing one's changes are told.
	level := slog.LevelDebug
	if current > 0 {
		level = slog.LevelInfo
	} else if adoptable(db) {
		level = slog.LevelInfo
		log.Info("adopting a database made before versioned migrations: baseline recorded as version 1")
	}
	results, err := p.Up(ctx)
	var done []Step
	for _, r := range results {
		if r.Error == nil {
			done = append(done, Step{Version: r.Source.Version, Name: nameOf(r.Source.Version), AppliedAt: time.Now()})
			log.Log(ctx, level, "database migrated", "version", r.Source.Version, "name", nameOf(r.Source.Version), "took", r.Duration)
		}
	}
	if err != nil {
		return done, fmt.Errorf("migrate: %w", err)
	}
	return done, nil
}

// adoptable reports whether the database holds the tables of a cloud that
// predates versioned migrations.
func adoptable(db *gorm.DB) bool { return db.Migrator().HasTable("users") }

func nameOf(v int64) string {
	for _, m := range All() {
		if m.Version == v {
			return m.Name
		}
	}
	return ""
}

// provider wraps the history for goose, on db's own connection pool.
func provider(db *gorm.DB) (*goose.Provider, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	dialect := goose.DialectSQLite3
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true), goose.WithSlog(slog.New(slog.DiscardHandler))}
	if db.Dialector.Name() == "postgres" {
		dialect = goose.DialectPostgres
		// Poll the advisory lock every second for up to 5 minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	for _, m := range All() {
		up := m.Up
		opts = append(opts, goose.WithGoMigrations(goose.NewGoMigration(m.Version,
			&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error { return up(ctx, onTx(db, ctx, tx)) }},
			nil)))
	}
	return goose.NewProvider(dialect, sqlDB, nil, opts...)
}

// onTx is a GORM handle on goose's transaction, as gorm.DB.Transaction
// makes one.
func onTx(db *gorm.DB, ctx context.Context, tx *sql.Tx) *gorm.DB {
	g := db.Session(&gorm.Session{NewDB: true, Context: ctx})
	g.Statement.ConnPool = tx
	return g
}

// AddColumns adds the columns of model's fields that the table lacks.
func AddColumns(tx *gorm.DB, model any, fields ...string) error {
	m := tx.Migrator()
	for _, f := range fields {
		if m.HasColumn(model, f) {
			continue
		}
		if err := m.AddColumn(model, f); err != nil {
			return fmt.Errorf("add column %s: %w", f, err)
		}
	}
	return nil
}

// AddIndexes creates the named indexes of model that the table lacks.
func AddIndexes(tx *gorm.DB, model any, names ...string) error {
	m := tx.Migrator()
	for _, n := range names {
		if m.HasIndex(model, n) {
			continue
		}
		if err := m.CreateIndex(model, n); err != nil {
			return fmt.Errorf("create index %s: %w", n, err)
		}
	}
	return nil
}

// PerEngine runs the statement written for the engine tx is on.
func PerEngine(tx *gorm.DB, sqlite, postgres string, args ...any) error {
	q := sqlite
	if tx.Dialector.Name() == "postgres" {
		q = postgres
	}
	return tx.Exec(q, args...).Error
}
