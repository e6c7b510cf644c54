package store_test

import (
	"context"
	"strconv"
	"testing"

	"homeport.dev/cloud/internal/store"
)

// TestMappingsFromBeforeProxyProtocolKeepTheHeader: a database made before
// mappings had a proxy_protocol column gets it at the next start, true for
// every existing row (they were all served with the PROXY header), on both
// engines; a new row can still store false.
func TestMappingsFromBeforeProxyProtocolKeepTheHeader(t *testing.T) {
	for _, e := range engines {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := e.DSN(t)
			db, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			// The schema as an older cloud left it, with one mapping.
			h := aliceHome(t, db)
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

// TestPrivateMappingsFromBeforeNamesGetOne: a database made before mappings
// had names gets the column at the next start; each private mapping is named
// private-ID (home connect finds it by that), public ones stay unnamed, and
// the home/name pair is unique from then on, on both engines.
func TestPrivateMappingsFromBeforeNamesGetOne(t *testing.T) {
	for _, e := range engines {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := e.DSN(t)
			db, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			// The schema as an older cloud left it: no name column (and no
			// record of versioned migrations).
			h := aliceHome(t, db)
			must(t, db.Exec("DROP INDEX idx_mapping_home_name").Error)
			must(t, db.Exec("ALTER TABLE mappings DROP COLUMN name").Error)
			must(t, db.Exec("DROP TABLE IF EXISTS goose_db_version").Error)
			must(t, db.Exec("INSERT INTO mappings (home_id, scheme, tunnel_port, private, created_at) VALUES (?, 'tcp', 20000, ?, CURRENT_TIMESTAMP)", h.ID, true).Error)
			must(t, db.Exec("INSERT INTO mappings (home_id, scheme, host, tunnel_port, private, created_at) VALUES (?, 'https', 'app.example.com', 20001, ?, CURRENT_TIMESTAMP)", h.ID, false).Error)
			must(t, db.Exec("INSERT INTO mappings (home_id, scheme, tunnel_port, private, created_at) VALUES (?, 'tcp', 20002, ?, CURRENT_TIMESTAMP)", h.ID, true).Error)
			db.Close()

			db, err = store.Open(ctx, dsn) // migrates
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var ms []store.Mapping
			must(t, db.Order("tunnel_port").Find(&ms).Error)
			want := []string{"private-" + strconv.FormatUint(ms[0].ID, 10), "", "private-" + strconv.FormatUint(ms[2].ID, 10)}
			for i, m := range ms {
				if m.MappingName() != want[i] {
					t.Errorf("mapping on tunnel port %d is named %q, want %q", m.TunnelPort, m.MappingName(), want[i])
				}
			}
			dup := ms[0].MappingName()
			err = db.Create(&store.Mapping{HomeID: h.ID, Scheme: "tcp", TunnelPort: 20003, Private: true, Name: &dup}).Error
			if !store.IsDuplicate(err) {
				t.Errorf("a second mapping named %s in the home: %v, want a duplicate error", dup, err)
			}
			db.Close()
			if db, err = store.Open(ctx, dsn); err != nil { // migrating again changes nothing
				t.Fatal(err)
			}
			var again store.Mapping
			must(t, db.Where("tunnel_port = ?", 20000).Take(&again).Error)
			if again.MappingName() != want[0] {
				t.Errorf("after a second start the mapping is named %q", again.MappingName())
			}
		})
	}
}

// aliceHome stores a user alice and a home of hers, the rows the mapping
// tests hang their mappings on.
func aliceHome(t *testing.T, db *store.DB) store.Home {
	t.Helper()
	u := store.User{Username: "alice", Email: "alice@example.org", PasswordHash: "x", Role: "user", Active: true}
	must(t, db.Create(&u).Error)
	h := store.Home{Slot: 0, Slug: "abcdefgh", UserID: u.ID, PublicKey: "k", KeyFingerprint: "f"}
	must(t, db.Create(&h).Error)
	return h
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
