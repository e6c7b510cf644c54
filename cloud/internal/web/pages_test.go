package web_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

var nextPageRE = regexp.MustCompile(`<a href="([^"]*)" id="next-page">`)

// TestAdminListsPageThrough: the admin's users, homes and mappings pages
// show one page of rows and a "Next page" link that leads through the
// rest, every row once; the last page has no link.
func TestAdminListsPageThrough(t *testing.T) {
	e := newEnv(t)
	e.user("root", true, true)
	for _, name := range []string{"alice", "bob", "carol"} {
		u := e.user(name, true, false)
		if _, err := e.app.Homes.Claim(context.Background(), u, newKey(t)); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser()
	b.login("root")
	for _, tc := range []struct {
		path  string
		limit string
		rows  []string // a text each row shows, in order
	}{
		{"/admin/users", "2", []string{"alice@example.com", "bob@example.com", "carol@example.com", "root@example.com"}},
		{"/admin/homes", "2", []string{"<td>alice</td>", "<td>bob</td>", "<td>carol</td>"}},
	} {
		var seen []string
		path := tc.path + "?limit=" + tc.limit
		for pages := 0; path != ""; pages++ {
			if pages > 5 {
				t.Fatalf("%s: more pages than rows", tc.path)
			}
			status, page := b.get(path)
			if status != 200 {
				t.Fatalf("GET %s = %d\n%s", path, status, page)
			}
			var here []string
			for _, r := range tc.rows {
				if strings.Contains(page, r) {
					here = append(here, r)
				}
			}
			if len(here) > 2 {
				t.Errorf("GET %s shows %d rows, the limit is 2: %v", path, len(here), here)
			}
			seen = append(seen, here...)
			path = ""
			if m := nextPageRE.FindStringSubmatch(page); m != nil {
				path = strings.ReplaceAll(m[1], "&amp;", "&")
			}
		}
		if strings.Join(seen, " ") != strings.Join(tc.rows, " ") {
			t.Errorf("%s paged through: %v, want each of %v once", tc.path, seen, tc.rows)
		}
	}
	if status, page := b.get("/admin/mappings?limit=0"); status != 400 {
		t.Errorf("/admin/mappings?limit=0 = %d, want 400\n%s", status, page)
	}
}
