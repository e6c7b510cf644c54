package api_test

import (
	"context"
	"strings"
	"testing"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// reservedCloud is a cloud at cloud.provider.net, serving its API as
// api.provider.io, whose operator reserved corp.example.
func reservedCloud(c *config.Config) {
	c.PublicHost, c.APIHost, c.ReservedDomains = "cloud.provider.net", "api.provider.io", []string{"corp.example"}
}

// TestNoTenantOwnsAnIPAddress: an IP literal (v4, v6, a numeric last label)
// is neither a base domain nor a mapping host, whatever the PSL says.
func TestNoTenantOwnsAnIPAddress(t *testing.T) {
	e := newEnv(t, reservedCloud)
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	e.addDomain(alice, h.Slug, "example.com")
	for _, ip := range []string{"127.0.0.1", "1.2.3.4", "10.0.0.1", " 1.2.3.4 ", "::1", "[::1]", "2001:db8::1", "example.123", "127.1"} {
		e.unchanged("base domain "+ip, func() {
			got := e.refused(403, "POST", "/api/v1/homes/"+h.Slug+"/base-domains", alice, proto.BaseDomainRequest{Domain: ip})
			if got.Field != "domain" || !strings.Contains(got.Message, "is an IP address") {
				t.Errorf("base domain %q: %+v, want the IP rule named", ip, got)
			}
		})
		for _, scheme := range []string{"http", "https"} {
			e.unchanged(scheme+" mapping "+ip, func() {
				got := e.refused(403, "POST", "/api/v1/homes/"+h.Slug+"/mappings", alice, proto.MappingRequest{Scheme: scheme, Host: ip})
				if got.Field != "host" || !strings.Contains(got.Message, "is an IP address") {
					t.Errorf("%s mapping %q: %+v, want the IP rule named", scheme, ip, got)
				}
			})
		}
	}
}

// TestNoTenantOwnsTheCloudsNames: the public host, every name above and
// under it, the API host and the operator's reserved names are refused as
// base domains and as mapping hosts, even under a base domain stored before
// the rule existed; a sibling stays allowed.
func TestNoTenantOwnsTheCloudsNames(t *testing.T) {
	e := newEnv(t, reservedCloud)
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	rules := map[string]string{
		"cloud.provider.net":        "cloud.provider.net is reserved: it is this cloud's public host",
		"provider.net":              "provider.net is reserved: cloud.provider.net, this cloud's public host, is under it",
		"app.cloud.provider.net":    "app.cloud.provider.net is reserved: it is under cloud.provider.net, this cloud's public host",
		"api.provider.io":           "api.provider.io is reserved: it is this cloud's web and API host",
		"provider.io":               "provider.io is reserved: api.provider.io, this cloud's web and API host, is under it",
		"corp.example":              "corp.example is reserved: it is reserved by this cloud's operator",
		"www.corp.example":          "www.corp.example is reserved: it is under corp.example, reserved by this cloud's operator",
		" Cloud.Provider.NET ":      "cloud.provider.net is reserved: it is this cloud's public host",
		"a.b.cloud.provider.net":    "a.b.cloud.provider.net is reserved: it is under cloud.provider.net",
		"v2.api.provider.io":        "v2.api.provider.io is reserved: it is under api.provider.io",
		"intranet.corp.example":     "intranet.corp.example is reserved: it is under corp.example",
		"x.y.intranet.corp.example": "x.y.intranet.corp.example is reserved: it is under corp.example",
	}
	for name, rule := range rules {
		e.unchanged("base domain "+name, func() {
			got := e.refused(403, "POST", "/api/v1/homes/"+h.Slug+"/base-domains", alice, proto.BaseDomainRequest{Domain: name})
			if got.Field != "domain" || !strings.HasPrefix(got.Message, rule) {
				t.Errorf("base domain %q: %+v, want %q", name, got, rule)
			}
		})
	}
	// Base domains stored before the rule (they cover every name above).
	for _, d := range []string{"provider.net", "provider.io", "corp.example"} {
		if err := e.app.DB.Create(&store.BaseDomain{HomeID: homeID(t, e, h.Slug), Domain: d}).Error; err != nil {
			t.Fatal(err)
		}
	}
	for name, rule := range rules {
		e.unchanged("mapping "+name, func() {
			got := e.refused(403, "POST", "/api/v1/homes/"+h.Slug+"/mappings", alice, proto.MappingRequest{Scheme: "https", Host: name})
			if got.Field != "host" || !strings.HasPrefix(got.Message, rule) {
				t.Errorf("mapping %q: %+v, want %q", name, got, rule)
			}
		})
	}
	e.must(201, "POST", "/api/v1/homes/"+h.Slug+"/mappings", alice, proto.MappingRequest{Scheme: "https", Host: "shop.provider.net"}, nil)
	e.addDomain(alice, h.Slug, "provider.org") // not reserved: only names above or under are
}

func homeID(t *testing.T, e *env, slug string) uint64 {
	t.Helper()
	var h store.Home
	if err := e.app.DB.WithContext(context.Background()).Where("slug = ?", slug).Take(&h).Error; err != nil {
		t.Fatal(err)
	}
	return h.ID
}
