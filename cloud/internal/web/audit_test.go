package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestAdminAuditPage: changes made through the web UI are recorded with the
// user (or admin) who made them and their address; /admin/audit lists them
// with the API's filters and pages; a user without the admin views gets 403.
func TestAdminAuditPage(t *testing.T) {
	e := newEnv(t)
	e.user("root", true, true)
	e.user("alice", true, false)
	e.user("bob", false, false)
	a := e.browser()
	a.login("alice")
	status, page := a.post("/homes", url.Values{"public_key": {newKey(t)}})
	must(t, "claim", status, page, http.StatusOK)
	root := e.browser()
	root.login("root")
	root.get("/admin/users")
	status, page = root.post("/admin/users/bob/approve", nil)
	must(t, "approve", status, page, http.StatusOK, "User approved")

	status, page = root.get("/admin/audit")
	must(t, "audit page", status, page, http.StatusOK, "<h1>Audit log</h1>",
		"user.approve", "admin <strong>root</strong>", "home.claim", "user <strong>alice</strong>", "session.login", "<code>127.0.0.1</code>")
	status, page = root.get("/admin/audit?kind=user.approve")
	must(t, "filtered by kind", status, page, http.StatusOK, "user.approve", "bob")
	if strings.Contains(page, "home.claim") || strings.Contains(page, "session.login") {
		t.Errorf("?kind=user.approve lists other kinds:\n%s", page)
	}
	status, page = root.get("/admin/audit?actor=alice")
	must(t, "filtered by actor", status, page, http.StatusOK, "home.claim", "session.login")
	if strings.Contains(page, "user.approve") {
		t.Errorf("?actor=alice lists root's approval:\n%s", page)
	}
	status, page = root.get("/admin/audit?limit=1")
	must(t, "one record a page", status, page, http.StatusOK, "user.approve", `id="audit-next"`, "cursor=")
	status, page = root.get("/admin/audit?since=yesterday")
	must(t, "a bad time", status, page, http.StatusBadRequest, "yesterday", "is not a time")

	status, page = a.get("/admin/audit")
	must(t, "audit page for a user", status, page, http.StatusForbidden)
}
