package api_test

import (
	"testing"

	"homeport.dev/cloud/internal/config"
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
	e.must(201, "POST", pa, alice, proto.MappingRequest{Scheme: "tcp", Private: true}, &private)
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
		e.must(201, "POST", "/api/v1/homes/"+h.Slug+"/mappings", alice, proto.MappingRequest{Scheme: "tcp", Private: true}, nil)
	}
	e.unchanged("over quota", func() {
		if got := e.refused(409, "POST", "/api/v1/homes/"+h.Slug+"/mappings", alice, proto.MappingRequest{Scheme: "tcp", Private: true}); got.Code != proto.CodeQuota {
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
