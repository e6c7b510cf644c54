// Package web serves the cloud's server-rendered web UI: landing, signup,
// login, the user's dashboard (home, domains, mappings, tokens, client
// config) and the admin pages. It registers its pages on the API's router
// beside /api/, /healthz, /readyz and /metrics without changing them: every
// page route carries its own middleware (security headers, HTML error pages,
// origin check, CSRF, session), so nothing here applies to the JSON API.
package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/domains"
	"homeport.dev/cloud/internal/edges"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/mappings"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/ratelimit"
	"homeport.dev/cloud/internal/sshd"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/cloud/internal/traffic"
	"homeport.dev/proto"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps are the services the web UI shows and changes.
type Deps struct {
	Accounts *account.Service
	Homes    *homes.Service
	Domains  *domains.Service
	Mappings *mappings.Service
	// SSH is the public SSH endpoint homes connect to (User is filled per home).
	SSH proto.SSHEndpoint
	// Edges, when several cloud nodes share the database, gives each home
	// its edge's endpoint and lists the edges (/admin/edges); nil: one node.
	Edges *edges.Registry
	// Secure marks the session and CSRF cookies Secure. Requests that arrive
	// over HTTPS (directly or per X-Forwarded-Proto) get Secure cookies anyway.
	Secure bool
	// CloudURL is the base URL written into client configs; empty means the
	// URL the browser used.
	CloudURL string
	// SharedDomain is --shared-domain, written into client configs.
	SharedDomain string
	// Limiter slows login and signup attempts per client address and per
	// username, per minute; 0 means 10.
	Limiter *ratelimit.Limiter
	// Writes is the API's per-account budget of changes, shared so that
	// forms and API calls draw on one (nil: none).
	Writes *ratelimit.Limiter
	Log    *slog.Logger
	// Live is the SSH endpoint (who is online, since when, traffic) and
	// Traffic the recent history of that traffic; nil leaves them out of
	// the dashboards. Routes is the reconciler's report (HAProxy's state
	// and drift), Shaping whether bandwidth limits are enforced (nil) or
	// why not; nil leaves them out of the admin's dashboard.
	Live    *sshd.Server
	Traffic *traffic.Recorder
	Routes  func(context.Context) (proto.RoutesReport, error)
	Shaping func() error
	// Certificates counts each home's certificates reported in the last
	// 7 days; nil leaves them out of the admin's dashboard.
	Certificates func(context.Context) (map[uint64]int, error)
	// Done is closed when the cloud stops: live pages' event streams end,
	// so the HTTP servers' graceful shutdown does not wait for them.
	Done <-chan struct{}
	// Signup is --signup: open, approval, invite or closed.
	Signup string
	// AllowedHosts are the cloud's own names (--api-host, --public-host):
	// forms are accepted from pages of these, or of the host a request was
	// sent to (origin.go).
	AllowedHosts []string
	// DB is the database the audit log page reads.
	DB *store.DB
}

// Cookie and context names.
const (
	sessionCookie = "homeport_session"
	csrfCookie    = "homeport_csrf"
	csrfField     = "_csrf"
	ctxUser       = "web.user"
	ctxNonce      = "web.nonce"
	ctxCSRF       = "web.csrf"
)

// ui holds what every handler needs; it is built once by Register.
type ui struct {
	Deps
	pages    map[string]*template.Template
	ownHosts map[string]bool // Deps.AllowedHosts, lower case
}

// Register adds the web UI's routes to e. Call it once, after the API's
// routes are on e.
func Register(e *echo.Echo, d Deps) error {
	if d.Accounts == nil || d.Homes == nil || d.Domains == nil || d.Mappings == nil {
		return errors.New("web: Accounts, Homes, Domains and Mappings are required")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Limiter == nil {
		d.Limiter = ratelimit.New(10, time.Minute)
	}
	pages, err := parsePages()
	if err != nil {
		return err
	}
	w := &ui{Deps: d, pages: pages, ownHosts: map[string]bool{}}
	for _, h := range d.AllowedHosts {
		w.ownHosts[strings.ToLower(h)] = true
	}
	w.routes(e)
	w.htmlNotFound(e)
	return nil
}

// routes is the UI's route table; each area's handlers live in their own file.
func (w *ui) routes(e *echo.Echo) {
	base := []echo.MiddlewareFunc{w.headers, w.errorPages, w.sameOrigin, w.csrf(), w.session, w.auditActor}
	anyone := func(method, p string, h echo.HandlerFunc) { e.Add(method, p, h, base...) }
	// Every logged-in page asks one capability of the user's role
	// (account.Can): can names it; user pages need ReadOwn to read and
	// ManageOwn to change, admin pages (reads) ReadAdmin.
	can := func(need account.Capability, method, p string, h echo.HandlerFunc) {
		e.Add(method, p, h, append(base, w.requireUser, w.requireCan(need))...)
	}
	user := func(method, p string, h echo.HandlerFunc) {
		can(map[bool]account.Capability{true: account.ReadOwn, false: account.ManageOwn}[method == http.MethodGet], method, p, h)
	}
	admin := func(method, p string, h echo.HandlerFunc) {
		if method != http.MethodGet {
			panic("web: an admin form names its capability: use can")
		}
		can(account.ReadAdmin, method, p, h)
	}
	get, post := http.MethodGet, http.MethodPost

	e.GET("/static/:name", w.static, w.headers, w.errorPages)

	// auth.go
	anyone(get, "/", w.landing)
	anyone(get, "/signup", w.signupForm)
	anyone(post, "/signup", w.signup)
	anyone(get, "/login", w.loginForm)
	anyone(post, "/login", w.login)
	anyone(post, "/logout", w.logout)
	anyone(get, "/invite/:token", w.inviteForm) // accounts.go
	anyone(post, "/invite/:token", w.acceptInvite)
	anyone(get, "/reset/:token", w.resetForm)
	anyone(post, "/reset/:token", w.resetPassword)

	// dashboard.go
	user(get, "/dashboard", w.dashboard)
	user(post, "/homes", w.claim)
	user(post, "/homes/:slug/release", w.release)
	user(post, "/homes/:slug/bandwidth", w.bandwidth)
	user(post, "/homes/:slug/domains", w.addDomain)
	user(post, "/homes/:slug/domains/:domain/remove", w.removeDomain)
	user(post, "/homes/:slug/mappings", w.addMapping)
	user(post, "/homes/:slug/mappings/:id/delete", w.deleteMapping)
	user(get, "/homes/:slug/client.yaml", w.clientConfig)
	user(get, "/events", w.userEvents) // live.go

	// tokens.go
	can(account.OwnTokens, post, "/tokens", w.createToken)
	can(account.OwnTokens, post, "/tokens/:id/rotate", w.rotateToken)
	can(account.OwnTokens, post, "/tokens/:id/delete", w.deleteToken)
	user(post, "/setup", w.setupCommand)

	// admin.go
	admin(get, "/admin", w.adminDashboard) // live.go
	admin(get, "/admin/events", w.adminEvents)
	admin(get, "/admin/users", w.adminUsers)
	can(account.ApproveUsers, post, "/admin/users/:username/approve", w.approve)
	can(account.ApproveUsers, post, "/admin/users/:username/deactivate", w.deactivate)
	can(account.ManageRoles, post, "/admin/users/:username/role", w.setRole) // accounts.go
	can(account.ManageUsers, post, "/admin/users/:username/password-reset", w.passwordReset)
	can(account.ManageUsers, post, "/admin/users/:username/delete", w.deleteUser)
	admin(get, "/admin/invitations", w.adminInvitations)
	can(account.ManageUsers, post, "/admin/invitations", w.createInvitation)
	can(account.ManageUsers, post, "/admin/invitations/:id/revoke", w.revokeInvitation)
	admin(get, "/admin/homes", w.adminHomes)
	can(account.ReleaseAny, post, "/admin/homes/:slug/release", w.adminRelease)
	admin(get, "/admin/mappings", w.adminMappings)
	admin(get, "/admin/edges", w.adminEdges) // edges.go
	admin(get, "/admin/audit", w.adminAudit) // audit.go
}

// htmlNotFound makes unknown paths answer a browser with an HTML page
// instead of the API's JSON envelope. API, probe and metrics paths, and
// clients that do not ask for HTML, keep the API's error handler.
func (w *ui) htmlNotFound(e *echo.Echo) {
	next := e.HTTPErrorHandler
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		p := c.Request().URL.Path
		api := strings.HasPrefix(p, "/api/") || p == "/api" || p == "/healthz" || p == "/readyz" || p == "/metrics"
		if api || !strings.Contains(c.Request().Header.Get("Accept"), "text/html") || c.Response().Committed {
			next(err, c)
			return
		}
		w.setHeaders(c)
		if err := w.errorPage(c, err); err != nil {
			next(err, c)
		}
	}
}

// headers sets the security headers of every page. Scripts run only with
// this response's nonce; nothing may frame the UI.
func (w *ui) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		w.setHeaders(c)
		return next(c)
	}
}

func (w *ui) setHeaders(c echo.Context) {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	nonce := base64.RawStdEncoding.EncodeToString(b)
	c.Set(ctxNonce, nonce)
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'nonce-"+nonce+"'; style-src 'self'; img-src 'self' data:; "+
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(c.Request().URL.Path, "/static/") {
		// Pages show secrets and per-user state; never keep them in a cache.
		h.Set("Cache-Control", "no-store")
	}
}

// errorPages renders any error a page handler returns as an HTML page, so a
// browser never sees the API's JSON envelope or a stack trace.
func (w *ui) errorPages(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err == nil || c.Response().Committed {
			return err
		}
		return w.errorPage(c, err)
	}
}

// errorPage writes err as a page with the matching status. Unexpected
// errors are logged and shown without their details.
func (w *ui) errorPage(c echo.Context, err error) error {
	status, msg := http.StatusInternalServerError, "Something went wrong on the cloud; its log has the details. Try again later."
	var (
		p  *problem.Error
		he *echo.HTTPError
	)
	switch {
	case errors.As(err, &p):
		status, _ = problem.HTTPStatus(p.Kind)
		msg = p.Message
	case errors.As(err, &he):
		status, msg = he.Code, http.StatusText(he.Code)
		switch he.Code {
		case http.StatusNotFound:
			msg = "There is no page here."
		case http.StatusForbidden:
			msg = "This request was refused. If you submitted a form, reload the page and try again."
		case http.StatusRequestEntityTooLarge:
			msg = "The form was too large."
		}
	default:
		w.Log.Error("web request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
	}
	return w.render(c, status, "error", page{Title: http.StatusText(status), Data: errorView{Status: status, Message: msg}})
}

type errorView struct {
	Status  int
	Message string
}

// secure reports whether cookies set on this request should be Secure.
func (w *ui) secure(c echo.Context) bool {
	return w.Secure || c.Scheme() == "https"
}

// static serves the embedded stylesheet (and any other file under static/).
func (w *ui) static(c echo.Context) error {
	name := path.Join("static", c.Param("name"))
	if st, err := fs.Stat(staticFS, name); err != nil || st.IsDir() {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeFileFS(c.Response(), c.Request(), staticFS, name)
	return nil
}

// page is what every template receives.
type page struct {
	Title  string
	User   *store.User
	CSRF   string
	Nonce  string
	Notice string     // a success message after a redirect
	Err    *formError // the form that failed, if any
	Data   any
}

// formError is a refused form: which form, why, and what the user typed
// (passwords excluded), so the page can show the message beside the form
// with the input kept.
type formError struct {
	Status  int
	Form    string
	Field   string
	Message string
	Values  url.Values
}

// ErrorFor returns the error message of form, or "".
func (p page) ErrorFor(form string) string {
	if p.Err == nil || p.Err.Form != form {
		return ""
	}
	return p.Err.Message
}

// Value returns what the user typed into key of form before it was refused.
func (p page) Value(form, key string) string {
	if p.Err == nil || p.Err.Form != form {
		return ""
	}
	return p.Err.Values.Get(key)
}

// Admin reports whether the viewer may see the admin pages.
func (p page) Admin() bool { return p.Can(string(account.ReadAdmin)) }

// Can reports whether the viewer's role has the named capability
// (account.Can): templates show a button only to those who may use it.
func (p page) Can(capability string) bool {
	return p.User != nil && account.Can(p.User.Role, account.Capability(capability))
}

// render executes a page template into a buffer first, so a template error
// never leaves half a page.
func (w *ui) render(c echo.Context, status int, name string, p page) error {
	t, ok := w.pages[name]
	if !ok {
		return fmt.Errorf("web: no template %q", name)
	}
	if u, ok := c.Get(ctxUser).(store.User); ok {
		p.User = &u
	}
	p.CSRF, _ = c.Get(ctxCSRF).(string)
	p.Nonce, _ = c.Get(ctxNonce).(string)
	if p.Notice == "" {
		p.Notice = notices[c.QueryParam("done")]
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// refused shows a failed form again with its error when err is a problem
// the user can act on; other errors become the 500 page.
func (w *ui) refused(c echo.Context, form string, err error, show func(*formError) error) error {
	var p *problem.Error
	if !errors.As(err, &p) {
		return err
	}
	vals, _ := c.FormParams()
	kept := url.Values{}
	for k, v := range vals {
		if k != csrfField && !strings.Contains(k, "password") {
			kept[k] = v
		}
	}
	status, _ := problem.HTTPStatus(p.Kind)
	if p == errTooMany {
		status = http.StatusTooManyRequests
	}
	return show(&formError{Status: status, Form: form, Field: p.Field, Message: p.Message, Values: kept})
}

// done redirects after a successful form (post/redirect/get); the target
// page shows the fixed notice named by key.
func done(c echo.Context, to, key string) error {
	return c.Redirect(http.StatusSeeOther, to+"?done="+url.QueryEscape(key))
}

// notices are the success messages a redirect can name. Only fixed texts,
// so a crafted link cannot put words on the page.
var notices = map[string]string{
	"claimed":         "Your home is claimed. Download the client config or run home register to connect it.",
	"released":        "The home is released, with all its domains and mappings.",
	"bandwidth":       "Bandwidth limit saved.",
	"domain-added":    "Base domain added.",
	"domain-removed":  "Base domain removed.",
	"mapping-added":   "Mapping added.",
	"mapping-deleted": "Mapping deleted.",
	"token-deleted":   "Token deleted; it no longer works.",
	"approved":        "User approved; they can log in now.",
	"deactivated":     "User deactivated; their sessions and tokens stopped working.",
	"logged-out":      "You are logged out.",
	"role":            "Role changed.",
	"user-deleted":    "User deleted; their homes are released, their tokens and sessions ended.",
	"invite-revoked":  "Invitation revoked; its link no longer works.",
	"password-set":    "Your new password is set; log in with it.",
}

func parsePages() (map[string]*template.Template, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", f)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

var funcs = template.FuncMap{
	"kbps": func(v *int64) string {
		if v == nil {
			return "no limit"
		}
		switch k := *v; {
		case k >= 1000_000 && k%1000_000 == 0:
			return fmt.Sprintf("%d Gbit/s", k/1000_000)
		case k >= 1000 && k%1000 == 0:
			return fmt.Sprintf("%d Mbit/s", k/1000)
		default:
			return fmt.Sprintf("%d kbit/s", k)
		}
	},
	"date":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"bytes": byteSize, // live.go
	"rate":  rate,
	"ago":   ago,
	"deref": func(v *int64) string {
		if v == nil {
			return ""
		}
		return fmt.Sprint(*v)
	},
}

// currentUser is the logged-in user; only called behind requireUser.
func currentUser(c echo.Context) store.User {
	u, _ := c.Get(ctxUser).(store.User)
	return u
}

func ctx(c echo.Context) context.Context { return c.Request().Context() }
