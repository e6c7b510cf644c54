package api_test

import (
	"strings"
	"testing"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/proto"
)

func TestBaseDomains(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice", true, false), e.user("bob", true, false)
	ha, hb := e.claim(alice), e.claim(bob)
	pa, pb := "/api/v1/homes/"+ha.Slug+"/base-domains", "/api/v1/homes/"+hb.Slug+"/base-domains"

	var d proto.BaseDomain
	e.must(201, "POST", pa, alice, proto.BaseDomainRequest{Domain: "  Example.COM "}, &d)
	if d.Domain != "example.com" {
		t.Errorf("registered %q, want it trimmed and lowercased", d.Domain)
	}
	long := strings.Repeat("a.", 126) + "com" // 255 characters
	for _, bad := range []string{
		"com", "co.uk", "github.io", "a;clear map x", "exa mple.com", "example.com\nclear map x",
		"bücher.de", "example.org.", long, "", "*.example.org", "example_1.org", "-x.org", "x..org",
	} {
		e.unchanged("register "+bad, func() {
			if got := e.refused(400, "POST", pb, bob, proto.BaseDomainRequest{Domain: bad}); got.Field != "domain" {
				t.Errorf("%q: field = %q", bad, got.Field)
			}
		})
	}
	for _, clash := range []string{"example.com", "www.example.com", "a.b.example.com"} {
		e.unchanged("overlap "+clash, func() { e.refused(409, "POST", pb, bob, proto.BaseDomainRequest{Domain: clash}) })
	}
	e.unchanged("own duplicate", func() { e.refused(409, "POST", pa, alice, proto.BaseDomainRequest{Domain: "example.com"}) })
	e.must(201, "POST", pb, bob, proto.BaseDomainRequest{Domain: "bob.example.org"}, nil)
	e.unchanged("parent of another home's", func() { e.refused(409, "POST", pa, alice, proto.BaseDomainRequest{Domain: "example.org"}) })
	e.must(201, "POST", pa, alice, proto.BaseDomainRequest{Domain: "alice.example.org"}, nil) // a sibling is fine

	var list []proto.BaseDomain
	e.must(200, "GET", pa, alice, nil, &list)
	if len(list) != 2 || list[0].Domain != "alice.example.org" || list[1].Domain != "example.com" {
		t.Errorf("alice's domains = %+v", list)
	}
	// Removal is refused while a mapping uses a name under it.
	e.must(201, "POST", "/api/v1/homes/"+ha.Slug+"/mappings", alice, proto.MappingRequest{Scheme: "http", Host: "app.example.com"}, nil)
	e.unchanged("remove in use", func() {
		if got := e.refused(409, "DELETE", pa+"/example.com", alice, nil); !strings.Contains(got.Message, "app.example.com") {
			t.Errorf("message does not name the mapping: %q", got.Message)
		}
	})
	e.refused(404, "DELETE", pa+"/example.com", bob, nil)
	e.refused(404, "DELETE", pb+"/example.com", bob, nil)
	e.must(204, "DELETE", pa+"/alice.example.org", alice, nil, nil)
	e.refused(404, "DELETE", pa+"/alice.example.org", alice, nil)
}

// TestBaseDomainsPerHome: a home cannot pile up base domains (each costs a
// row and every later overlap check, and none is proven owned); the limit's
// refusal stores nothing, and a removed domain makes room again.
func TestBaseDomainsPerHome(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.DomainsPerHome = 2 })
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	p := "/api/v1/homes/" + h.Slug + "/base-domains"
	e.must(201, "POST", p, alice, proto.BaseDomainRequest{Domain: "one.org"}, nil)
	e.must(201, "POST", p, alice, proto.BaseDomainRequest{Domain: "two.org"}, nil)
	e.unchanged("third", func() {
		if got := e.refused(409, "POST", p, alice, proto.BaseDomainRequest{Domain: "three.org"}); got.Code != proto.CodeQuota {
			t.Errorf("code = %q, want %q", got.Code, proto.CodeQuota)
		}
	})
	e.must(204, "DELETE", p+"/one.org", alice, nil, nil)
	e.must(201, "POST", p, alice, proto.BaseDomainRequest{Domain: "three.org"}, nil)
}
