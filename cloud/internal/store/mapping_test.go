package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"homeport.dev/cloud/internal/store"
)

// TestMappingsFromBeforeProxyProtocolKeepTheHeader: a database made before
// mappings had a proxy_protocol column gets it at the next start, true for
// every existing row (they were all served with the PROXY header), on both
// engines; a new row can still store false.
func TestMappingsFromBeforeProxyProtocolKeepTheHeader(t *testing.T) {
	engines := []struct {
		name string
		dsn  func(t testing.TB) string
	}{
		{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "cloud.db") }},
		{"postgres", pg.DB},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := e.dsn(t)
			db, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			// The schema as an older cloud left it, with one mapping.
			u := store.User{Username: "alice", Email: "alice@example.org", PasswordHash: "x", Role: "user", Active: true}
			must(t, db.Create(&u).Error)
			h := store.Home{Slot: 0, Slug: "abcdefgh", UserID: u.ID, PublicKey: "k", KeyFingerprint: "f"}
			must(t, db.Create(&h).Error)
			must(t, db.Exec("ALTER TABLE mappings DROP COLUMN proxy_protocol").Error)
			must(t, db.Exec("DROP TABLE goose_db_version").Error) // older clouds ran AutoMigrate at each start
			must(t, db.Exec("INSERT INTO mappings (home_id, scheme, host, tunnel_port, private, created_at) VALUES (?, 'https', 'app.example.com', 20000, ?, CURRENT_TIMESTAMP)", h.ID, false).Error)
			db.Close()

			db, err = store.Open(ctx, dsn) // migrates
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var old store.Mapping
			must(t, db.Where("tunnel_port = ?", 20000).Take(&old).Error)
			if !old.ProxyProtocol {
				t.Errorf("a mapping stored before the column existed has proxy_protocol false; want true (it was served with the header)")
			}
			must(t, db.Create(&store.Mapping{HomeID: h.ID, Scheme: "tcp", TunnelPort: 20001, Private: true}).Error)
			must(t, db.Model(&store.Mapping{}).Where("tunnel_port = ?", 20001).Update("proxy_protocol", false).Error)
			var raw store.Mapping
			must(t, db.Where("tunnel_port = ?", 20001).Take(&raw).Error)
			if raw.ProxyProtocol {
				t.Errorf("proxy_protocol false did not stick")
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
