package api_test

import (
	"crypto/rand"
	"crypto/rsa"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"homeport.dev/proto"
)

func itoa[T ~int | ~uint64](v T) string { return strconv.FormatUint(uint64(v), 10) }

func rsaKey(t *testing.T, bits int) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(p)))
}

func TestClaimGivesPortBlocksAndThePinnedHostKey(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	if len(h.Slug) != 8 || h.SSH.User != h.Slug || h.SSH.Host != "cloud.example.net" || h.SSH.Port != 8022 {
		t.Errorf("home = %+v", h)
	}
	if !strings.HasPrefix(h.SSH.HostKey, "ssh-ed25519 ") {
		t.Errorf("host key = %q, want an ed25519 key", h.SSH.HostKey)
	}
	if h.TunnelPorts != (proto.PortRange{First: 20000, Last: 20015}) || h.TCPPorts != (proto.PortRange{First: 10000, Last: 10009}) {
		t.Errorf("first home ports = %v / %v", h.TunnelPorts, h.TCPPorts)
	}
	if h.BandwidthLimitKbps != nil || len(h.BaseDomains) != 0 {
		t.Errorf("new home has state: %+v", h)
	}
	var got proto.Home
	e.must(200, "GET", "/api/v1/homes/"+h.Slug, alice, nil, &got)
	if got.Slug != h.Slug || got.PublicKey != h.PublicKey {
		t.Errorf("GET home = %+v, want %+v", got, h)
	}
	var list []proto.Home
	e.must(200, "GET", "/api/v1/homes", alice, nil, &list)
	if len(list) != 1 || list[0].Slug != h.Slug {
		t.Errorf("homes = %+v", list)
	}
	bob := e.user("bob", true, false)
	hb := e.claim(bob)
	if hb.TunnelPorts.First != 20016 || hb.TCPPorts.First != 10010 {
		t.Errorf("second home ports = %v / %v", hb.TunnelPorts, hb.TCPPorts)
	}
	// One home per user by default.
	if got := e.refused(409, "POST", "/api/v1/homes", alice, proto.ClaimHomeRequest{PublicKey: newKey(t)}); got.Code != proto.CodeQuota {
		t.Errorf("second claim code = %s", got.Code)
	}
}

func TestClaimRejectsBadKeys(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	used := e.claim(e.user("bob", true, false)).PublicKey
	good := newKey(t)
	bad := map[string]string{
		"empty":            "",
		"garbage":          "ssh-ed25519 not-base64!",
		"rsa 2048":         rsaKey(t, 2048),
		"options":          `command="sh" ` + good,
		"two keys":         good + "\n" + newKey(t),
		"private key text": "-----BEGIN OPENSSH PRIVATE KEY-----",
		"injection":        "a;clear map x",
	}
	for name, key := range bad {
		e.unchanged(name, func() {
			if got := e.refused(400, "POST", "/api/v1/homes", alice, proto.ClaimHomeRequest{PublicKey: key}); got.Field != "public_key" {
				t.Errorf("%s: field = %q", name, got.Field)
			}
		})
	}
	e.unchanged("a key of another home", func() { e.refused(409, "POST", "/api/v1/homes", alice, proto.ClaimHomeRequest{PublicKey: used}) })
	e.must(201, "POST", "/api/v1/homes", alice, proto.ClaimHomeRequest{PublicKey: rsaKey(t, 3072)}, nil)
}

func TestPatchHomeLimitAndKey(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	path := "/api/v1/homes/" + h.Slug
	var got proto.Home
	e.must(200, "PATCH", path, alice, `{"bandwidth_limit_kbps": 5000}`, &got)
	if got.BandwidthLimitKbps == nil || *got.BandwidthLimitKbps != 5000 {
		t.Fatalf("limit = %v", got.BandwidthLimitKbps)
	}
	for _, body := range []string{
		`{"bandwidth_limit_kbps": 99}`, `{"bandwidth_limit_kbps": 10000001}`, `{"bandwidth_limit_kbps": -5}`,
		`{"bandwidth_limit_kbps": "fast"}`, `{"bandwidth_limit_kbps": 1.5}`, `{}`, `{"bandwidth":1}`,
		`{"public_key": "ssh-rsa AAAA"}`, `{"public_key": "x", "bandwidth_limit_kbps": 500}`,
	} {
		e.unchanged(body, func() { e.refused(400, "PATCH", path, alice, body) })
	}
	e.must(200, "PATCH", path, alice, `{"bandwidth_limit_kbps": 100}`, &got)
	e.must(200, "PATCH", path, alice, `{"bandwidth_limit_kbps": 10000000}`, &got)
	e.must(200, "PATCH", path, alice, `{"bandwidth_limit_kbps": null}`, &got)
	if got.BandwidthLimitKbps != nil {
		t.Errorf("null did not clear the limit: %v", *got.BandwidthLimitKbps)
	}
	key := newKey(t)
	e.must(200, "PATCH", path, alice, proto.PatchHomeRequest{PublicKey: &key}, &got)
	if !strings.HasPrefix(key, got.PublicKey) || got.BandwidthLimitKbps != nil {
		t.Errorf("after key change: %+v", got)
	}
}

func TestReleaseRemovesEverythingAndTheSlotIsCleanForTheNextUser(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	e.addDomain(alice, h.Slug, "example.com")
	e.must(201, "POST", "/api/v1/homes/"+h.Slug+"/mappings", alice, proto.MappingRequest{Scheme: "https", Host: "app.example.com"}, nil)
	e.must(201, "POST", "/api/v1/homes/"+h.Slug+"/mappings", alice, proto.MappingRequest{Scheme: "tcp", PublicPort: 10001}, nil)
	e.must(200, "PATCH", "/api/v1/homes/"+h.Slug, alice, `{"bandwidth_limit_kbps": 5000}`, nil)
	e.must(204, "DELETE", "/api/v1/homes/"+h.Slug, alice, nil, nil)
	e.refused(404, "GET", "/api/v1/homes/"+h.Slug, alice, nil)
	for _, table := range []string{"homes", "base_domains", "mappings"} {
		var n int64
		if err := e.app.DB.Table(table).Count(&n).Error; err != nil || n != 0 {
			t.Errorf("%s has %d rows after release (%v)", table, n, err)
		}
	}
	bob := e.user("bob", true, false)
	hb := e.claim(bob)
	if hb.TunnelPorts != h.TunnelPorts || hb.BandwidthLimitKbps != nil || len(hb.BaseDomains) != 0 {
		t.Errorf("next home = %+v, want slot of %+v with no state", hb, h)
	}
	// The released names and ports are free again.
	e.addDomain(bob, hb.Slug, "example.com")
	e.must(201, "POST", "/api/v1/homes/"+hb.Slug+"/mappings", bob, proto.MappingRequest{Scheme: "tcp", PublicPort: 10001}, nil)
}

func TestAllSlotsTaken(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 10; i++ {
		e.claim(e.user("u"+itoa(i), true, false))
	}
	if got := e.refused(409, "POST", "/api/v1/homes", e.user("late", true, false), proto.ClaimHomeRequest{PublicKey: newKey(t)}); got.Code != proto.CodeNoCapacity {
		t.Errorf("code = %s, want %s", got.Code, proto.CodeNoCapacity)
	}
}
