package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/proto"
)

// roleUser creates an active account with role.
func (e *env) roleUser(name, role string) {
	e.t.Helper()
	u := e.user(name, true, false)
	if _, err := e.app.Accounts.SetRole(context.Background(), account.CLI, u.Username, role); err != nil {
		e.t.Fatal(err)
	}
}

// TestPagesShowOnlyWhatARoleMayUse logs in as each role and reads the
// pages: every form a role may submit is there, no other one is, and a
// hidden form submitted anyway is refused with the 403 page.
func TestPagesShowOnlyWhatARoleMayUse(t *testing.T) {
	e := newEnv(t)
	e.user("root", true, true)
	e.roleUser("olga", proto.RoleOperator)
	e.roleUser("vera", proto.RoleViewer)
	alice := e.user("alice", true, false)
	e.user("newbie", false, false)
	if _, err := e.app.Homes.Claim(context.Background(), alice, newKey(t)); err != nil {
		t.Fatal(err)
	}
	hs, _ := e.app.Homes.List(context.Background(), alice)
	slug := hs[0].Slug

	// Forms by what they do; %s is filled with a user name.
	approve := `action="/admin/users/newbie/approve"`
	deactivateUser := `action="/admin/users/alice/deactivate"`
	deactivateAdmin := `action="/admin/users/root/deactivate"`
	role := `action="/admin/users/alice/role"`
	reset := `action="/admin/users/alice/password-reset"`
	deleteUser := `action="/admin/users/alice/delete"`
	release := `action="/admin/homes/` + slug + `/release"`
	invite := `action="/admin/invitations"`
	claim := `action="/homes"`
	setup := `action="/setup"`
	token := `action="/tokens"`
	all := []string{approve, deactivateUser, deactivateAdmin, role, reset, deleteUser, release, invite, claim, setup, token}

	cases := []struct {
		name  string
		admin bool // reads the admin pages
		shown []string
	}{
		{"root", true, []string{approve, deactivateUser, role, reset, deleteUser, release, invite, claim, setup, token}},
		{"olga", true, []string{approve, deactivateUser, release, claim, setup, token}},
		{"vera", true, []string{token}},
		{"alice", false, []string{token}}, // alice has a home: no claim form
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := e.browser()
			b.login(c.name)
			var pages strings.Builder
			for _, p := range []string{"/dashboard", "/admin/users", "/admin/homes", "/admin/invitations", "/admin/mappings"} {
				status, page := b.get(p)
				want := http.StatusOK
				if !c.admin && strings.HasPrefix(p, "/admin") {
					want = http.StatusForbidden
				}
				if status != want {
					t.Fatalf("%s as %s = %d, want %d", p, c.name, status, want)
				}
				pages.WriteString(page)
			}
			html := pages.String()
			for _, f := range all {
				shown := strings.Contains(html, f)
				if want := contains(c.shown, f); shown != want {
					t.Errorf("%s: form %s shown = %v, want %v", c.name, f, shown, want)
				}
			}
			if nav := strings.Contains(html, `href="/admin/users"`); nav != c.admin {
				t.Errorf("%s: admin links in the menu = %v, want %v", c.name, nav, c.admin)
			}
			if c.name == "vera" && !strings.Contains(html, "Read-only account") {
				t.Error("the viewer's dashboard does not say it is read-only")
			}
			// What is hidden is refused too, and changes nothing.
			before := e.dump()
			for _, f := range all {
				if contains(c.shown, f) || f == claim || f == setup || f == token || (c.name == "root" && f == deactivateAdmin) {
					continue // root's own deactivation is refused as such (TestJourney)
				}
				path := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(f)[1]
				status, page := b.post(path, url.Values{"role": {"admin"}, "valid_hours": {"24"}})
				if status != http.StatusForbidden || !strings.Contains(page, "may") {
					t.Errorf("%s: POST %s = %d, want the 403 page", c.name, path, status)
				}
			}
			if c.name == "vera" {
				if status, _ := b.post("/homes", url.Values{"public_key": {newKey(t)}}); status != http.StatusForbidden {
					t.Errorf("the viewer claimed a home: %d", status)
				}
			}
			if after := e.dump(); after != before {
				t.Errorf("%s's refused forms changed the accounts:\n%s\n%s", c.name, before, after)
			}
		})
	}
}

// TestViewerReadsItsHomeButChangesNothing: a user demoted to viewer still
// sees the home they own, without a form to change it, and its forms are
// refused.
func TestViewerReadsItsHomeButChangesNothing(t *testing.T) {
	e := newEnv(t)
	u := e.user("victor", true, false)
	h, err := e.app.Homes.Claim(context.Background(), u, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Domains.Register(context.Background(), h.ID, "victor.example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Accounts.SetRole(context.Background(), account.CLI, "victor", proto.RoleViewer); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	page := b.login("victor")
	must(t, "viewer's dashboard", 200, page, 200, h.Slug, "victor.example.com")
	if strings.Contains(page, `action="/homes/`) {
		t.Errorf("the viewer's dashboard has forms to change the home:\n%s", page)
	}
	before := e.dump()
	for _, path := range []string{"/homes/" + h.Slug + "/release", "/homes/" + h.Slug + "/domains/victor.example.com/remove", "/homes/" + h.Slug + "/bandwidth"} {
		if status, _ := b.post(path, url.Values{"limit_kbps": {"1000"}}); status != http.StatusForbidden {
			t.Errorf("viewer POST %s = %d, want 403", path, status)
		}
	}
	if e.dump() != before {
		t.Error("the viewer changed something")
	}
	if ds, _ := e.app.Domains.List(context.Background(), h.ID); len(ds) != 1 {
		t.Errorf("the viewer's domains: %v", ds)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// dump is the accounts, homes and invitations, to compare.
func (e *env) dump() string {
	var out strings.Builder
	us, _ := e.app.Accounts.List(context.Background())
	for _, u := range us {
		out.WriteString(u.Username + " " + u.Role + " " + map[bool]string{true: "active", false: "inactive"}[u.Active] + "\n")
	}
	hs, _ := e.app.Homes.ListAll(context.Background())
	for _, h := range hs {
		out.WriteString("home " + h.Slug + "\n")
	}
	invs, _ := e.app.Accounts.Invitations(context.Background())
	for _, i := range invs {
		out.WriteString("invitation " + i.Role + "\n")
	}
	return out.String()
}

var linkRE = regexp.MustCompile(`http://[^"]+/(invite|reset)/(hp[ir]_[a-z0-9]+)`)

// TestInvitationAndResetPages: an admin makes an invitation link in the web
// UI (shown once); the invitee opens it, chooses a name and password and
// lands logged in with the invited role; the link then says it was used.
// A password-reset link made for alice sets her password and logs out her
// open session.
func TestInvitationAndResetPages(t *testing.T) {
	e := newEnv(t, "--signup", "invite")
	e.user("root", true, true)
	admin := e.browser()
	admin.login("root")
	admin.get("/admin/invitations")
	status, page := admin.post("/admin/invitations", url.Values{"role": {"operator"}, "valid_hours": {"48"}})
	must(t, "create invitation", status, page, http.StatusCreated, "only time it is shown", "for operator")
	link := linkRE.FindString(page)
	if link == "" {
		t.Fatalf("no invitation link on the page:\n%s", page)
	}
	_, page = admin.get("/admin/invitations")
	if strings.Contains(page, linkRE.FindStringSubmatch(link)[2]) {
		t.Fatal("the invitations page shows the link again")
	}
	must(t, "invitations list", 200, page, 200, "<td>operator</td>", "open")

	path := strings.TrimPrefix(link, e.url)
	guest := e.browser()
	status, page = guest.get(path)
	must(t, "invitation page", status, page, 200, "invited to this cloud as <strong>operator</strong>")
	status, page = guest.post(path, url.Values{"username": {"olga"}, "email": {"olga@example.com"}, "password": {"a long passphrase"}})
	must(t, "accept", status, page, 200, "<h1>Dashboard</h1>", `href="/admin/users"`)
	status, page = e.browser().get(path)
	must(t, "used invitation", status, page, http.StatusConflict, "already used (by olga)")
	_, page = admin.get("/admin/invitations")
	must(t, "invitations list", 200, page, 200, "used by olga")
	status, page = e.browser().get("/invite/hpi_nothing")
	must(t, "unknown invitation", status, page, http.StatusNotFound, "not valid")

	// Signup is by invitation only here.
	status, page = e.browser().get("/signup")
	must(t, "signup page", status, page, 200, "invitation only")
	if strings.Contains(page, `action="/signup"`) {
		t.Error("the signup page of an invite-only cloud has a form")
	}

	// A password reset ends alice's open session.
	e.user("alice", true, false)
	alice := e.browser()
	alice.login("alice")
	admin.get("/admin/users")
	status, page = admin.post("/admin/users/alice/password-reset", nil)
	must(t, "reset link", status, page, http.StatusCreated, "Password reset link for alice")
	link = linkRE.FindString(page)
	path = strings.TrimPrefix(link, e.url)
	other := e.browser()
	status, page = other.get(path)
	must(t, "reset page", status, page, 200, "For the account <strong>alice</strong>")
	status, page = other.post(path, url.Values{"password": {"short"}})
	must(t, "short password", status, page, http.StatusBadRequest, "too short")
	status, page = other.post(path, url.Values{"password": {"a brand new passphrase"}})
	must(t, "reset", status, page, 200, "Your new password is set")
	if _, page := alice.get("/dashboard"); !strings.Contains(page, "<h1>Log in</h1>") {
		t.Error("alice's session survived the password reset")
	}
	status, page = other.get(path)
	must(t, "used reset link", status, page, http.StatusNotFound, "not valid")
	other.get("/login")
	status, page = other.post("/login", url.Values{"username": {"alice"}, "password": {"a brand new passphrase"}})
	must(t, "login with the new password", status, page, 200, "<h1>Dashboard</h1>")
}

// TestSignupPageFollowsTheMode: open signup makes a ready account, closed
// signup shows why and refuses the form.
func TestSignupPageFollowsTheMode(t *testing.T) {
	e := newEnv(t, "--signup", "open")
	b := e.browser()
	b.get("/signup")
	status, page := b.post("/signup", url.Values{"username": {"alice"}, "email": {"alice@example.com"}, "password": {"password-alice"}})
	must(t, "open signup", status, page, http.StatusCreated, "is ready")
	b.login("alice")

	e = newEnv(t, "--signup", "closed")
	b = e.browser()
	status, page = b.get("/signup")
	must(t, "closed signup page", status, page, 200, "signup is closed")
	b.get("/login") // a page with a form: the CSRF token
	status, page = b.post("/signup", url.Values{"username": {"bob"}, "email": {"bob@example.com"}, "password": {"password-bob"}})
	must(t, "closed signup", status, page, http.StatusForbidden, "signup is closed")
	if _, err := e.app.Accounts.User(context.Background(), "bob"); err == nil {
		t.Error("closed signup created an account")
	}
}
