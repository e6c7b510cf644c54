package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"gorm.io/gorm"

	"homeport.dev/cloud/internal/store"
	"homeport.dev/cloud/internal/store/migrations"
)

// engines are the two databases every schema test runs on.
var engines = pg.Engines()

// TestEveryModelFieldHasAColumn: the schema the migrations make holds every
// table, column and index of the live models, on both engines. A field added
// to models.go without a migration fails here (AutoMigrate no longer runs).
func TestEveryModelFieldHasAColumn(t *testing.T) {
	for _, e := range engines {
		t.Run(e.Name, func(t *testing.T) {
			db, err := store.Open(context.Background(), e.DSN(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			m := db.Migrator()
			for _, model := range store.Models() {
				stmt := &gorm.Statement{DB: db.DB}
				if err := stmt.Parse(model); err != nil {
					t.Fatal(err)
				}
				s := stmt.Schema
				if !m.HasTable(model) {
					t.Errorf("table %s: missing (add a migration)", s.Table)
					continue
				}
				for _, f := range s.Fields {
					if f.DBName != "" && !m.HasColumn(model, f.DBName) {
						t.Errorf("column %s.%s: missing (add a migration)", s.Table, f.DBName)
					}
				}
				for _, idx := range s.ParseIndexes() {
					if !m.HasIndex(model, idx.Name) {
						t.Errorf("index %s on %s: missing (add a migration)", idx.Name, s.Table)
					}
				}
			}
		})
	}
}

// TestAdoptsADatabaseMadeBeforeMigrations: a database an older cloud made
// with AutoMigrate (no version table, rows in it) opens: its rows stay, it is
// recorded at the newest version, and the later migrations ran (a private
// mapping got its private-ID name).
func TestAdoptsADatabaseMadeBeforeMigrations(t *testing.T) {
	for _, e := range engines {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := e.DSN(t)
			old, err := store.OpenUnmigrated(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			if err := old.AutoMigrate(&migrations.User{}, &migrations.Token{}, &migrations.Session{}, &migrations.Home{},
				&migrations.BaseDomain{}, &migrations.Mapping{}, &migrations.CertificateOrder{}, &migrations.GuardRow{}); err != nil {
				t.Fatal(err)
			}
			u := migrations.User{Username: "alice", Email: "a@example.org", PasswordHash: "x", Role: "user", Active: true}
			must(t, old.Create(&u).Error)
			h := migrations.Home{Slot: 0, Slug: "h1", UserID: u.ID, PublicKey: "k", KeyFingerprint: "f"}
			must(t, old.Create(&h).Error)
			mp := migrations.Mapping{HomeID: h.ID, Scheme: "tcp", TunnelPort: 20001, Private: true, ProxyProtocol: true}
			must(t, old.Create(&mp).Error)
			old.Close()

			db, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatalf("open a database made before migrations: %v", err)
			}
			defer db.Close()
			st, err := migrations.Read(ctx, db.DB)
			if err != nil {
				t.Fatal(err)
			}
			if st.Current != migrations.Latest() || st.Pending() {
				t.Errorf("adopted database at version %d, want %d", st.Current, migrations.Latest())
			}
			var got store.Mapping
			must(t, db.First(&got, mp.ID).Error)
			if got.HomeID != h.ID || got.TunnelPort != 20001 {
				t.Errorf("the old mapping changed: %+v", got)
			}
			var name *string
			must(t, db.Raw("SELECT name FROM mappings WHERE id = ?", mp.ID).Scan(&name).Error)
			if name == nil || *name != "private-1" {
				t.Errorf("old private mapping's name %v, want private-1", name)
			}
			if err := db.Create(&store.Invitation{Hash: "h", Role: "user", CreatedBy: "alice"}).Error; err != nil {
				t.Errorf("a table the old cloud lacked is not usable: %v", err)
			}
		})
	}
}

// TestRefusesADatabaseANewerCloudMigrated: a database at a version this
// binary does not know is not opened, and not changed.
func TestRefusesADatabaseANewerCloudMigrated(t *testing.T) {
	for _, e := range engines {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := e.DSN(t)
			db, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			newer := migrations.Latest() + 1
			must(t, db.Exec("INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, ?)", newer, true).Error)
			db.Close()

			if _, err := store.Open(ctx, dsn); !errors.Is(err, migrations.ErrNewer) {
				t.Fatalf("open a newer database: %v, want ErrNewer", err)
			}
			raw, err := store.OpenUnmigrated(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			st, err := migrations.Read(ctx, raw.DB)
			if err != nil || st.Current != newer {
				t.Errorf("version after the refusal: %d (%v), want %d", st.Current, err, newer)
			}
		})
	}
}

// TestNodesStartingTogetherMigrateOnce: several nodes opening one fresh
// PostgreSQL database at once all start, and each migration ran once.
func TestNodesStartingTogetherMigrateOnce(t *testing.T) {
	ctx := context.Background()
	dsn := pg.DB(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := store.Open(ctx, dsn)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a node did not start: %v", err)
		}
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	must(t, db.Raw("SELECT COUNT(*) FROM goose_db_version WHERE version_id = 1").Scan(&n).Error)
	if n != 1 {
		t.Errorf("the baseline is recorded %d times, want once", n)
	}
}
