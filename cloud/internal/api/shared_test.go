package api_test

import (
	"strings"
	"testing"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/proto"
)

func withShared(c *config.Config) { c.SharedDomain = "homes.example.net" }

// TestSharedDomainNames: on a cloud with --shared-domain, a home publishes
// SLUG.SHARED and LABEL-SLUG.SHARED without a base domain, gets the first
// free of SLUG, 2-SLUG, 3-SLUG... when it gives no host, and cannot take
// another home's names nor the shared domain itself.
func TestSharedDomainNames(t *testing.T) {
	e := newEnv(t, withShared, func(c *config.Config) { c.MappingsPerHome = 5 })
	alice, bob := e.user("alice", true, false), e.user("bob", true, false)
	ha, hb := e.claim(alice), e.claim(bob)
	if ha.SharedDomain != "homes.example.net" {
		t.Errorf("home's shared_domain = %q, want homes.example.net", ha.SharedDomain)
	}
	pa, pb := "/api/v1/homes/"+ha.Slug+"/mappings", "/api/v1/homes/"+hb.Slug+"/mappings"
	name := func(label string) string { return proto.SharedName(label, ha.Slug, "homes.example.net") }

	// Empty host: the first free name for the scheme.
	create := func(scheme string) proto.Mapping {
		t.Helper()
		var m proto.Mapping
		e.must(201, "POST", pa, alice, proto.MappingRequest{Scheme: scheme}, &m)
		return m
	}
	first, second, web := create("https"), create("https"), create("http")
	if first.Host != name("") || second.Host != name("2") || web.Host != name("") {
		t.Errorf("picked %s, %s (https) and %s (http); want %s, %s and %s", first.Host, second.Host, web.Host, name(""), name("2"), name(""))
	}
	e.must(204, "DELETE", pa+"/"+itoa(first.ID), alice, nil, nil)
	if again := create("https"); again.Host != name("") {
		t.Errorf("after deleting %s the next pick is %s, want it back", name(""), again.Host)
	}
	if third := create("https"); third.Host != name("3") {
		t.Errorf("third https pick = %s, want %s", third.Host, name("3"))
	}
	// A label of its own choosing, no base domain needed.
	var own proto.Mapping
	e.must(201, "POST", pa, alice, proto.MappingRequest{Scheme: "https", Host: name("blog")}, &own)
	// The home's budget bounds the names: 5 mappings, then quota.
	e.refused(409, "POST", pa, alice, proto.MappingRequest{Scheme: "https"})

	// Another home cannot take alice's names, nor odd shapes of them.
	e.unchanged("bob takes alice's names", func() {
		for _, host := range []string{name("blog"), name("x"), name(""), "a." + name(""), "homes.example.net"} {
			got := e.refused(403, "POST", pb, bob, proto.MappingRequest{Scheme: "http", Host: host})
			if host == name("x") && !strings.Contains(got.Message, "is a name of home "+ha.Slug) {
				t.Errorf("bob maps %s: %q, want it to say whose name it is", host, got.Message)
			}
		}
		// Nor claim the shared domain, a name under it or above it as a base domain.
		for _, d := range []string{"homes.example.net", name(""), "example.net"} {
			e.refused(403, "POST", "/api/v1/homes/"+hb.Slug+"/base-domains", bob, proto.BaseDomainRequest{Domain: d})
		}
		// A private mapping gets no name picked; tcp takes none.
		e.refused(400, "POST", pb, bob, proto.MappingRequest{Scheme: "https", Private: true})
		e.refused(400, "POST", pb, bob, proto.MappingRequest{Scheme: "tcp", Host: proto.SharedName("", hb.Slug, "homes.example.net"), PublicPort: hb.TCPPorts.First})
	})
	var bobs proto.Mapping
	e.must(201, "POST", pb, bob, proto.MappingRequest{Scheme: "http"}, &bobs)
	if bobs.Host != proto.SharedName("", hb.Slug, "homes.example.net") {
		t.Errorf("bob's pick = %s", bobs.Host)
	}
	e.must(201, "POST", pb, bob, proto.MappingRequest{Scheme: "tcp", PublicPort: hb.TCPPorts.First}, nil)
}

// TestNoSharedDomainNeedsAHost: without --shared-domain an http mapping
// without a host is refused, saying what to do.
func TestNoSharedDomainNeedsAHost(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	if h.SharedDomain != "" {
		t.Errorf("shared_domain = %q without --shared-domain", h.SharedDomain)
	}
	got := e.refused(400, "POST", "/api/v1/homes/"+h.Slug+"/mappings", alice, proto.MappingRequest{Scheme: "http"})
	if !strings.Contains(got.Message, "--shared-domain") || !strings.Contains(got.Message, "need a host") {
		t.Errorf("message %q, want it to ask for a host or --shared-domain", got.Message)
	}
}

// TestProxyProtocolSwitch: mappings send the PROXY header unless created
// with proxy_protocol false, and say so in every answer.
func TestProxyProtocolSwitch(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	e.addDomain(alice, h.Slug, "example.com")
	p := "/api/v1/homes/" + h.Slug + "/mappings"
	var on, off, tcp proto.Mapping
	e.must(201, "POST", p, alice, proto.MappingRequest{Scheme: "https", Host: "agent.example.com"}, &on)
	e.must(201, "POST", p, alice, `{"scheme":"http","host":"ssh.example.com","proxy_protocol":false}`, &off)
	e.must(201, "POST", p, alice, `{"scheme":"tcp","public_port":`+itoa(uint64(h.TCPPorts.First))+`,"proxy_protocol":false}`, &tcp)
	if !on.ProxyProtocol || off.ProxyProtocol || tcp.ProxyProtocol {
		t.Errorf("created proxy_protocol = %v %v %v, want true false false", on.ProxyProtocol, off.ProxyProtocol, tcp.ProxyProtocol)
	}
	var ms []proto.Mapping
	e.must(200, "GET", p, alice, nil, &ms)
	for _, m := range ms {
		if want := m.ID == on.ID; m.ProxyProtocol != want {
			t.Errorf("listed %s://%s proxy_protocol = %v, want %v", m.Scheme, m.Host, m.ProxyProtocol, want)
		}
	}
	e.refused(400, "POST", p, alice, `{"scheme":"https","host":"x.example.com","proxy_protocol":"no"}`)
}

// TestCertificateReports: a home reports certificates of its own hosts;
// the answer names the registered domain they count against.
func TestCertificateReports(t *testing.T) {
	e := newEnv(t, withShared)
	alice, bob := e.user("alice", true, false), e.user("bob", true, false)
	ha, hb := e.claim(alice), e.claim(bob)
	var m proto.Mapping
	e.must(201, "POST", "/api/v1/homes/"+ha.Slug+"/mappings", alice, proto.MappingRequest{Scheme: "https"}, &m)
	var o proto.CertificateOrder
	e.must(201, "POST", "/api/v1/homes/"+ha.Slug+"/certificates", alice, proto.CertificateOrderRequest{Host: m.Host}, &o)
	if o.Host != m.Host || o.Domain != "example.net" || o.CreatedAt.IsZero() {
		t.Errorf("order = %+v, want %s counted against example.net", o, m.Host)
	}
	e.refused(404, "POST", "/api/v1/homes/"+hb.Slug+"/certificates", bob, proto.CertificateOrderRequest{Host: m.Host})
	e.refused(404, "POST", "/api/v1/homes/"+ha.Slug+"/certificates", bob, proto.CertificateOrderRequest{Host: m.Host})
	e.refused(400, "POST", "/api/v1/homes/"+ha.Slug+"/certificates", alice, `{"host":"a;b"}`)
}
