package api_test

import (
	"strings"
	"testing"

	"homeport.dev/proto"
)

// TestAuthzMatrix sends every tenant-scoped request as anonymous, as another
// user, as an inactive user and as an admin through the user API: only the
// owner gets through, and nobody else changes anything.
func TestAuthzMatrix(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	e.addDomain(alice, h.Slug, "example.com")
	var m proto.Mapping
	e.must(201, "POST", "/api/v1/homes/"+h.Slug+"/mappings", alice, proto.MappingRequest{Scheme: "https", Host: "app.example.com"}, &m)

	other := e.user("mallory", true, false)
	e.claim(other)
	inactive := e.user("idle", false, false)
	key := newKey(t)
	home := "/api/v1/homes/" + h.Slug
	requests := []struct {
		method, path string
		body         any
	}{
		{"GET", home, nil},
		{"PATCH", home, `{"bandwidth_limit_kbps": 500}`},
		{"PATCH", home, proto.PatchHomeRequest{PublicKey: &key}},
		{"DELETE", home, nil},
		{"GET", home + "/base-domains", nil},
		{"POST", home + "/base-domains", proto.BaseDomainRequest{Domain: "mallory.org"}},
		{"DELETE", home + "/base-domains/example.com", nil},
		{"GET", home + "/mappings", nil},
		{"POST", home + "/mappings", proto.MappingRequest{Scheme: "http", Host: "x.example.com"}},
		{"DELETE", home + "/mappings/" + itoa(m.ID), nil},
	}
	callers := []struct {
		name, token string
		status      int
		code        string
	}{
		{"anonymous", "", 401, proto.CodeUnauthorized},
		{"garbage token", "hp_notatoken", 401, proto.CodeUnauthorized},
		{"other user", other, 404, proto.CodeNotFound},
		{"inactive user", inactive, 403, proto.CodeInactive},
		// Admins act on other users' homes only through /admin.
		{"admin", e.admin, 404, proto.CodeNotFound},
	}
	for _, c := range callers {
		for _, r := range requests {
			e.unchanged(c.name+" "+r.method+" "+r.path, func() {
				if got := e.refused(c.status, r.method, r.path, c.token, r.body); got.Code != c.code {
					t.Errorf("%s %s %s: code %s, want %s", c.name, r.method, r.path, got.Code, c.code)
				}
			})
		}
	}
	// Listing shows only the caller's own homes.
	var list []proto.Home
	e.must(200, "GET", "/api/v1/homes", other, nil, &list)
	if len(list) != 1 || list[0].Slug == h.Slug {
		t.Errorf("mallory sees %+v", list)
	}

	admin := []struct{ method, path string }{
		{"GET", "/api/v1/admin/users"},
		{"GET", "/api/v1/admin/homes"},
		{"GET", "/api/v1/admin/mappings"},
		{"POST", "/api/v1/admin/users/idle/approve"},
		{"POST", "/api/v1/admin/users/alice/deactivate"},
		{"DELETE", "/api/v1/admin/homes/" + h.Slug},
	}
	for _, r := range admin {
		e.unchanged("user "+r.path, func() { e.refused(403, r.method, r.path, alice, nil) })
		e.unchanged("anonymous "+r.path, func() { e.refused(401, r.method, r.path, "", nil) })
	}
	var homes []proto.Home
	e.must(200, "GET", "/api/v1/admin/homes", e.admin, nil, &homes)
	if len(homes) != 2 {
		t.Errorf("admin sees %d homes, want 2", len(homes))
	}
	var ms []struct {
		proto.Mapping
		Home string `json:"home"`
	}
	e.must(200, "GET", "/api/v1/admin/mappings", e.admin, nil, &ms)
	if len(ms) != 1 || ms[0].Home != h.Slug || ms[0].Host != "app.example.com" {
		t.Errorf("admin mappings = %+v", ms)
	}
	e.must(204, "DELETE", "/api/v1/admin/homes/"+h.Slug, e.admin, nil, nil)
	e.refused(404, "GET", home, alice, nil)
}

func TestOversizedBodyIsRefused(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	big := `{"domain":"` + strings.Repeat("a", 100<<10) + `.com"}`
	e.unchanged("oversized body", func() {
		if got := e.refused(413, "POST", "/api/v1/homes/"+h.Slug+"/base-domains", alice, big); got.Code != proto.CodeTooLarge {
			t.Errorf("code = %s", got.Code)
		}
	})
}
