package api_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

func TestMappings(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice", true, false), e.user("bob", true, false)
	ha, hb := e.claim(alice), e.claim(bob)
	e.addDomain(alice, ha.Slug, "example.com")
	e.addDomain(bob, hb.Slug, "bob.net")
	pa := "/api/v1/homes/" + ha.Slug + "/mappings"

	var https, http, tcp, private proto.Mapping
	e.must(201, "POST", pa, alice, proto.MappingRequest{Scheme: "https", Host: "app.example.com"}, &https)
	e.must(201, "POST", pa, alice, proto.MappingRequest{Scheme: "http", Host: "app.example.com"}, &http)
	e.must(201, "POST", pa, alice, proto.MappingRequest{Scheme: "tcp", PublicPort: 10005}, &tcp)
	e.must(201, "POST", pa, alice, proto.MappingRequest{Name: "gpu-ui", Scheme: "tcp", Private: true}, &private)
	if got := []int{https.TunnelPort, http.TunnelPort, tcp.TunnelPort, private.TunnelPort}; got[0] != 20000 || got[1] != 20001 || got[2] != 20002 || got[3] != 20003 {
		t.Errorf("tunnel ports = %v, want the lowest free ports of the block", got)
	}
	if https.State == "" || tcp.PublicPort != 10005 || !private.Private || private.PublicPort != 0 {
		t.Errorf("mappings = %+v %+v %+v", https, tcp, private)
	}
	// Lowest free port is reused after a delete.
	e.must(204, "DELETE", pa+"/"+itoa(http.ID), alice, nil, nil)
	var again proto.Mapping
	e.must(201, "POST", pa, alice, proto.MappingRequest{Scheme: "http", Host: "www.example.com"}, &again)
	if again.TunnelPort != 20001 {
		t.Errorf("after delete the new mapping got %d, want 20001", again.TunnelPort)
	}

	bad := []struct {
		name string
		body any
		code int
	}{
		{"injection host", proto.MappingRequest{Scheme: "https", Host: "x;clear map"}, 400},
		{"space in host", proto.MappingRequest{Scheme: "https", Host: "a b.example.com"}, 400},
		{"newline in host", proto.MappingRequest{Scheme: "https", Host: "a\nclear map.example.com"}, 400},
		{"unicode host", proto.MappingRequest{Scheme: "https", Host: "ä.example.com"}, 400},
		{"trailing dot", proto.MappingRequest{Scheme: "https", Host: "b.example.com."}, 400},
		{"253+ chars", proto.MappingRequest{Scheme: "https", Host: longHost(254)}, 400},
		{"no host", proto.MappingRequest{Scheme: "https"}, 400},
		{"bad scheme", proto.MappingRequest{Scheme: "ftp", Host: "b.example.com"}, 400},
		{"port on https", proto.MappingRequest{Scheme: "https", Host: "b.example.com", PublicPort: 10006}, 400},
		{"host on tcp", proto.MappingRequest{Scheme: "tcp", Host: "b.example.com", PublicPort: 10006}, 400},
		{"tcp without port", proto.MappingRequest{Scheme: "tcp"}, 400},
		{"port 0 range", `{"scheme":"tcp","public_port":-1}`, 400},
		{"port 70000", proto.MappingRequest{Scheme: "tcp", PublicPort: 70000}, 400},
		{"port of another home", proto.MappingRequest{Scheme: "tcp", PublicPort: hb.TCPPorts.First}, 400},
		{"port outside every block", proto.MappingRequest{Scheme: "tcp", PublicPort: 22}, 400},
		{"private with port", proto.MappingRequest{Scheme: "tcp", PublicPort: 10006, Private: true}, 400},
		{"port as string", `{"scheme":"tcp","public_port":"10006"}`, 400},
		{"host not under a base domain", proto.MappingRequest{Scheme: "https", Host: "app.other.org"}, 403},
		{"host under another home's domain", proto.MappingRequest{Scheme: "https", Host: "www.bob.net"}, 403},
		{"duplicate host", proto.MappingRequest{Scheme: "https", Host: "app.example.com"}, 409},
		{"duplicate port", proto.MappingRequest{Scheme: "tcp", PublicPort: 10005}, 409},
	}
	for _, b := range bad {
		e.unchanged(b.name, func() { e.refused(b.code, "POST", pa, alice, b.body) })
	}
	// Another home's mapping cannot be deleted through one's own home.
	e.unchanged("delete other's", func() {
		e.refused(404, "DELETE", "/api/v1/homes/"+hb.Slug+"/mappings/"+itoa(https.ID), bob, nil)
		e.refused(404, "DELETE", "/api/v1/homes/"+ha.Slug+"/mappings/"+itoa(https.ID), bob, nil)
	})
	var list []proto.Mapping
	e.must(200, "GET", pa, alice, nil, &list)
	if len(list) != 4 {
		t.Errorf("alice has %d mappings, want 4: %+v", len(list), list)
	}
}

func TestMappingQuotaPerHome(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MappingsPerHome = 3 })
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	for i := 0; i < 3; i++ {
		e.must(201, "POST", "/api/v1/homes/"+h.Slug+"/mappings", alice, proto.MappingRequest{Name: "p" + itoa(i), Scheme: "tcp", Private: true}, nil)
	}
	e.unchanged("over quota", func() {
		if got := e.refused(409, "POST", "/api/v1/homes/"+h.Slug+"/mappings", alice, proto.MappingRequest{Name: "p3", Scheme: "tcp", Private: true}); got.Code != proto.CodeQuota {
			t.Errorf("code = %s", got.Code)
		}
	})
}

func longHost(n int) string {
	b := make([]byte, 0, n)
	for len(b) < n-len(".example.com") {
		b = append(b, 'a')
		if len(b)%60 == 0 {
			b = append(b, '.')
		}
	}
	return string(b) + ".example.com"
}

// TestPrivateMappingNames: a private mapping needs a valid name, unique in
// its home (another home of the account may use it too); a public mapping
// may have one; the account's private mappings are listed with their home
// and name, and a deleted mapping's name can be taken again.
func TestPrivateMappingNames(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.HomesPerUser = 2 })
	alice := e.user("alice", true, false)
	ha, hb := e.claim(alice), e.claim(alice)
	e.addDomain(alice, ha.Slug, "example.com")
	pa, pb := "/api/v1/homes/"+ha.Slug+"/mappings", "/api/v1/homes/"+hb.Slug+"/mappings"

	var gpu, other, web, unnamed proto.Mapping
	e.must(201, "POST", pa, alice, proto.MappingRequest{Name: "gpu-ui", Scheme: "tcp", Private: true}, &gpu)
	e.must(201, "POST", pb, alice, proto.MappingRequest{Name: "gpu-ui", Scheme: "tcp", Private: true}, &other)
	e.must(201, "POST", pa, alice, proto.MappingRequest{Name: "web", Scheme: "https", Host: "app.example.com"}, &web)
	e.must(201, "POST", pa, alice, proto.MappingRequest{Scheme: "https", Host: "www.example.com"}, &unnamed)
	if gpu.Name != "gpu-ui" || other.Name != "gpu-ui" || web.Name != "web" || unnamed.Name != "" {
		t.Errorf("names = %q %q %q %q, want gpu-ui gpu-ui web and none", gpu.Name, other.Name, web.Name, unnamed.Name)
	}
	for _, b := range []struct {
		name  string
		body  proto.MappingRequest
		code  int
		field string
	}{
		{"private without a name", proto.MappingRequest{Scheme: "tcp", Private: true}, 400, "name"},
		{"private https without a name", proto.MappingRequest{Scheme: "https", Host: "gpu.example.com", Private: true}, 400, "name"},
		{"upper case", proto.MappingRequest{Name: "GPU", Scheme: "tcp", Private: true}, 400, "name"},
		{"slash", proto.MappingRequest{Name: "a/b", Scheme: "tcp", Private: true}, 400, "name"},
		{"too long", proto.MappingRequest{Name: strings.Repeat("a", 33), Scheme: "tcp", Private: true}, 400, "name"},
		{"injection", proto.MappingRequest{Name: "x';drop table mappings;--", Scheme: "tcp", Private: true}, 400, "name"},
		{"bad name on a public mapping", proto.MappingRequest{Name: "a b", Scheme: "https", Host: "b.example.com"}, 400, "name"},
		{"duplicate private name", proto.MappingRequest{Name: "gpu-ui", Scheme: "tcp", Private: true}, 409, "name"},
		{"a public mapping's name", proto.MappingRequest{Name: "web", Scheme: "tcp", Private: true}, 409, "name"},
	} {
		e.unchanged(b.name, func() {
			if got := e.refused(b.code, "POST", pa, alice, b.body); got.Field != b.field || !strings.Contains(got.Message, "name") {
				t.Errorf("%s: error %+v, want one about field %s", b.name, got, b.field)
			}
		})
	}

	var listed []proto.Mapping
	e.must(200, "GET", pa, alice, nil, &listed)
	names := map[uint64]string{}
	for _, m := range listed {
		names[m.ID] = m.Name
	}
	if names[gpu.ID] != "gpu-ui" || names[web.ID] != "web" {
		t.Errorf("GET mappings names = %v", names)
	}
	var private []proto.PrivateMapping
	e.must(200, "GET", "/api/v1/private-mappings", alice, nil, &private)
	got := map[string]int{}
	for _, p := range private {
		got[p.Home+"/"+p.Name] = p.TunnelPort
	}
	if len(got) != 2 || got[ha.Slug+"/gpu-ui"] != gpu.TunnelPort || got[hb.Slug+"/gpu-ui"] != other.TunnelPort {
		t.Errorf("private mappings = %v, want %s/gpu-ui and %s/gpu-ui", got, ha.Slug, hb.Slug)
	}

	// Closed and opened again (home forwards close/open): the same name.
	e.must(204, "DELETE", pa+"/"+itoa(gpu.ID), alice, nil, nil)
	var again proto.Mapping
	e.must(201, "POST", pa, alice, proto.MappingRequest{Name: "gpu-ui", Scheme: "tcp", Private: true}, &again)
	if again.Name != "gpu-ui" {
		t.Errorf("reopened mapping is named %q", again.Name)
	}
}

// TestPrivateMappingsFromBeforeNamesAreListedByName: a private mapping an
// older cloud stored without a name is listed for `home connect` as
// private-ID after the upgrade.
func TestPrivateMappingsFromBeforeNamesAreListedByName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{Username: "alice", Email: "alice@example.org", PasswordHash: "x", Role: proto.RoleUser, Active: true}
	h := store.Home{Slot: 0, Slug: "oldhome1", PublicKey: "k", KeyFingerprint: "f"}
	for _, q := range []func() error{
		func() error { return db.Create(&u).Error },
		func() error { h.UserID = u.ID; return db.Create(&h).Error },
		// The schema as an older cloud left it: no name column.
		func() error { return db.Exec("DROP INDEX idx_mapping_home_name").Error },
		func() error { return db.Exec("ALTER TABLE mappings DROP COLUMN name").Error },
		func() error { return db.Exec("DROP TABLE IF EXISTS goose_db_version").Error },
		func() error {
			return db.Exec("INSERT INTO mappings (home_id, scheme, tunnel_port, private, created_at) VALUES (?, 'tcp', 20000, ?, CURRENT_TIMESTAMP)", h.ID, true).Error
		},
	} {
		if err := q(); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	e := newEnv(t, func(c *config.Config) { c.DB = path })
	alice, err := e.app.Accounts.User(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.app.Accounts.CreateToken(context.Background(), alice, "test")
	if err != nil {
		t.Fatal(err)
	}
	var private []proto.PrivateMapping
	e.must(200, "GET", "/api/v1/private-mappings", tok.Token, nil, &private)
	if len(private) != 1 || private[0].Home != "oldhome1" || private[0].Name != "private-"+itoa(private[0].ID) {
		t.Errorf("private mappings = %+v, want oldhome1's named private-ID", private)
	}
}
