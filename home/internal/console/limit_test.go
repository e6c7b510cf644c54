package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConsoleShowsTheLimitReadOnly: the home's credential cannot change its
// bandwidth limit (the account sets it), so the dashboard shows the limit
// and where to change it, and offers no form that would fail.
func TestConsoleShowsTheLimitReadOnly(t *testing.T) {
	s := startSite(t, siteOptions{})
	b := s.browser()
	page := b.get("/", nil)
	if page.status != http.StatusOK {
		t.Fatalf("dashboard: %d %s", page.status, page.body)
	}
	if !strings.Contains(page.body, `<p id="limit">none</p>`) || !strings.Contains(page.body, "change it in the cloud's web UI") {
		t.Errorf("the dashboard does not show the limit and where to change it:\n%s", page.body)
	}
	if strings.Contains(page.body, `action="/limit"`) {
		t.Error("the dashboard still offers to change the limit")
	}
	if strings.Contains(page.body, "cannot read the home from the cloud") {
		t.Errorf("the console could not read its home with its own key:\n%s", page.body)
	}
	if a := b.post("/limit", url.Values{"kbps": {"500"}}, nil); a.status != http.StatusNotFound && a.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /limit: %d, want no such action", a.status)
	}
}
