package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"homeport.dev/proto"
)

// pages follows a paged list from path with limit, checking each page's
// size and its next-page headers, and returns every item's key in order.
func pages[T any](t *testing.T, e *env, path, token string, limit int, key func(T) string) []string {
	t.Helper()
	var keys []string
	url := path + sep(path) + "limit=" + itoa(uint64(limit))
	for n := 0; n < 100; n++ {
		status, b, h := e.send("GET", url, nil, func(req *http.Request, _ []byte) { req.Header.Set("Authorization", "Bearer "+token) })
		if status != 200 {
			t.Fatalf("GET %s = %d %s", url, status, b)
		}
		var items []T // the shape of the list before paging: a JSON array
		if err := json.Unmarshal(b, &items); err != nil {
			t.Fatalf("GET %s: %s is not a JSON array: %v", url, b, err)
		}
		if len(items) > limit {
			t.Fatalf("GET %s: %d items, limit %d", url, len(items), limit)
		}
		for _, it := range items {
			keys = append(keys, key(it))
		}
		next := h.Get("X-Next-Cursor")
		if next == "" {
			if h.Get("Link") != "" {
				t.Errorf("the last page of %s has a Link header %q", path, h.Get("Link"))
			}
			return keys
		}
		link := h.Get("Link")
		if !strings.Contains(link, `rel="next"`) || !strings.Contains(link, "cursor="+next) {
			t.Errorf("GET %s: Link %q does not name the next page (cursor %s)", url, link, next)
		}
		url = path + sep(path) + "limit=" + itoa(uint64(limit)) + "&cursor=" + next
	}
	t.Fatalf("%s: more than 100 pages", path)
	return nil
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

// TestListsPageAndFilter: every list endpoint serves pages of ?limit= items
// chained by the X-Next-Cursor (and Link) header, the pages together are
// the whole list without a repeat, filters select, and without ?limit= the
// answer is the whole list as before.
func TestListsPageAndFilter(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice", true, false), e.user("bob", true, false)
	e.user("carol", false, false)
	e.user("dave", true, false)
	ha := e.claim(alice)
	e.claim(bob)
	e.addDomain(alice, ha.Slug, "alice.example")
	base := "/api/v1/homes/" + ha.Slug + "/mappings"
	for _, host := range []string{"a.alice.example", "b.alice.example", "c.alice.example"} {
		e.must(201, "POST", base, alice, proto.MappingRequest{Scheme: "http", Host: host}, nil)
	}
	e.must(201, "POST", base, alice, proto.MappingRequest{Scheme: "https", Host: "a.alice.example"}, nil)

	user := func(u proto.User) string { return u.Username }
	if got := strings.Join(pages(t, e, "/api/v1/admin/users", e.admin, 2, user), " "); got != "alice bob carol dave root" {
		t.Errorf("users paged by 2 = %s", got)
	}
	var all []proto.User
	e.must(200, "GET", "/api/v1/admin/users", e.admin, nil, &all)
	if len(all) != 5 {
		t.Errorf("users without limit = %d, want all 5", len(all))
	}
	if got := strings.Join(pages(t, e, "/api/v1/admin/users?active=false", e.admin, 2, user), " "); got != "carol" {
		t.Errorf("inactive users = %s", got)
	}
	if got := strings.Join(pages(t, e, "/api/v1/admin/users?role=admin", e.admin, 2, user), " "); got != "root" {
		t.Errorf("admins = %s", got)
	}

	home := func(h proto.Home) string { return h.Owner }
	if got := strings.Join(pages(t, e, "/api/v1/admin/homes", e.admin, 1, home), " "); got != "alice bob" && got != "bob alice" {
		t.Errorf("homes paged by 1 = %s", got)
	}
	if got := strings.Join(pages(t, e, "/api/v1/admin/homes?owner=bob", e.admin, 1, home), " "); got != "bob" {
		t.Errorf("homes of bob = %s", got)
	}
	if got := strings.Join(pages(t, e, "/api/v1/homes", alice, 1, home), " "); got != "alice" {
		t.Errorf("alice's homes = %s", got)
	}

	mapping := func(m proto.Mapping) string { return m.Scheme + "://" + m.Host }
	if got := strings.Join(pages(t, e, base, alice, 3, mapping), " "); got != "http://a.alice.example http://b.alice.example http://c.alice.example https://a.alice.example" {
		t.Errorf("mappings paged by 3 = %s", got)
	}
	if got := strings.Join(pages(t, e, base+"?scheme=https", alice, 3, mapping), " "); got != "https://a.alice.example" {
		t.Errorf("https mappings = %s", got)
	}
	type adminMapping struct {
		proto.Mapping
		Home string `json:"home"`
	}
	if got := pages(t, e, "/api/v1/admin/mappings?home="+ha.Slug+"&scheme=http", e.admin, 2, func(m adminMapping) string { return m.Home + " " + m.Host }); len(got) != 3 || got[0] != ha.Slug+" a.alice.example" {
		t.Errorf("admin mappings of %s, http = %v", ha.Slug, got)
	}

	for _, bad := range []string{
		"/api/v1/admin/users?limit=0", "/api/v1/admin/users?limit=1001", "/api/v1/admin/users?limit=ten",
		"/api/v1/admin/users?cursor=not%20a%20cursor", "/api/v1/admin/users?active=maybe", "/api/v1/admin/users?role=god",
		"/api/v1/admin/homes?owner=x%3Bdrop", "/api/v1/admin/homes?cursor=YWxpY2U", // a cursor of the wrong kind
		"/api/v1/admin/mappings?scheme=ftp", "/api/v1/admin/mappings?home=..%2Fx",
	} {
		e.refused(400, "GET", bad, e.admin, nil)
	}
	e.refused(400, "GET", base+"?scheme=ftp", alice, nil)
}
