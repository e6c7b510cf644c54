package mappings_test

import (
	"context"
	"sync"
	"testing"

	"homeport.dev/cloud/internal/domains"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/mappings"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// TestProxyProtocolAndSharedNamesOnBothEngines: proxy_protocol false is
// stored as false (GORM would write the column's default, true, for a false
// bool) and true is the default; concurrent requests without a host each get
// a different shared-domain name, on SQLite and PostgreSQL.
func TestProxyProtocolAndSharedNamesOnBothEngines(t *testing.T) {
	for _, e := range pg.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, e.DSN(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ds := domains.New(db, domains.NewReserved("", "", "homes.example.net", nil), 0)
			hs, err := homes.New(db, homes.Options{Layout: homes.DefaultLayout, HomesPerUser: 1})
			if err != nil {
				t.Fatal(err)
			}
			ms, err := mappings.New(db, ds, mappings.Options{Layout: homes.DefaultLayout, PerHome: 8})
			if err != nil {
				t.Fatal(err)
			}
			h := claim(t, hs, newUser(t, db, "alice"))
			off, on := false, true
			for _, tt := range []struct {
				req  proto.MappingRequest
				want bool
			}{
				{proto.MappingRequest{Name: "off", Scheme: "tcp", Private: true, ProxyProtocol: &off}, false},
				{proto.MappingRequest{Name: "on", Scheme: "tcp", Private: true, ProxyProtocol: &on}, true},
				{proto.MappingRequest{Name: "default", Scheme: "tcp", Private: true}, true},
			} {
				m, err := ms.Create(ctx, h, tt.req)
				if err != nil {
					t.Fatal(err)
				}
				var stored store.Mapping
				if err := db.Take(&stored, m.ID).Error; err != nil {
					t.Fatal(err)
				}
				if m.ProxyProtocol != tt.want || stored.ProxyProtocol != tt.want {
					t.Errorf("proxy_protocol %v: returned %v, stored %v", tt.req.ProxyProtocol, m.ProxyProtocol, stored.ProxyProtocol)
				}
			}

			var mu sync.Mutex
			got := map[string]bool{}
			errs := together(6, func(int) error {
				m, err := ms.Create(ctx, h, proto.MappingRequest{Scheme: "https"})
				if err == nil {
					mu.Lock()
					got[m.HostName()] = true
					mu.Unlock()
				}
				return err
			})
			expect(t, errs, 5, problem.Quota) // 3 made above, 8 per home
			for _, label := range []string{"", "2", "3", "4", "5"} {
				if n := proto.SharedName(label, h.Slug, "homes.example.net"); !got[n] {
					t.Errorf("names picked = %v, want %s among them", got, n)
				}
			}
		})
	}
}
