// Package console serves a running profile's dashboard: connection state
// (live, over server-sent events), bandwidth limit, base domains, entries
// with their tunnel state and a "local service listening" indicator,
// certificates with their state (issue and renew), and every action the
// CLI has. It binds loopback by default; bound elsewhere it
// requires the password set with `home console --set-password`. Every form
// is CSRF-protected; it answers only to the names it knows (hosts.go),
// logins are server-side sessions (sessions.go) and password guessing is
// throttled (throttle.go).
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/crypto/bcrypt"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/certs"
	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/store"
	"homeport.dev/proto"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed static
var static embed.FS

const (
	csrfField  = "csrf"
	ctxSession = "session"
)

// Options configure a console.
type Options struct {
	// Listen is the address the console will listen on, like
	// 127.0.0.1:8001; beyond loopback a password is required.
	Listen string
	Log    *slog.Logger
	// Now is the clock of sessions and login throttling; nil means
	// time.Now.
	Now func() time.Time
}

// Console is the dashboard of one agent.
type Console struct {
	a          *agent.Agent
	log        *slog.Logger
	pages      *template.Template
	login      bool   // a password is required (non-loopback bind)
	listenHost string // of Options.Listen
	port       string // the port it answers on
	sessions   *sessions
	throttle   *throttle
}

// HashPassword returns the bcrypt hash stored in console.password_hash.
func HashPassword(pw string) (string, error) {
	if len(pw) < 10 {
		return "", errors.New("the console password needs at least 10 characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	return string(h), err
}

// Loopback reports whether addr binds only this machine.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// New returns the console of a. When o.Listen is not loopback, the profile
// must have a console password.
func New(a *agent.Agent, o Options) (*Console, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	host, port, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("console listen address %s: %w", proto.Printable(o.Listen), err)
	}
	c := &Console{a: a, log: o.Log, login: !Loopback(o.Listen), listenHost: host, port: port,
		sessions: newSessions(o.Now), throttle: newThrottle(o.Now)}
	if c.login && a.Profile.Console.PasswordHash == "" {
		return nil, fmt.Errorf("the console would listen on %s, beyond this machine: set a password first with `home console --set-password`, or listen on 127.0.0.1", o.Listen)
	}
	pages, err := template.New("").Funcs(template.FuncMap{
		"date": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"upDown": func(b bool) string {
			if b {
				return "up"
			}
			return "down"
		},
	}).ParseFS(templates, "templates/*.html")
	if err != nil {
		return nil, err
	}
	c.pages = pages
	return c, nil
}

// sessionCookie is the session cookie's name. Cookies do not tell ports
// apart, so each console (one per profile, each on its own port) has its own.
func (c *Console) sessionCookie() string { return "homeport_console_" + c.port }

// Handler is the console's HTTP handler.
func (c *Console) Handler() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = echo.ExtractIPDirect() // login throttling must not trust X-Forwarded-For
	allowed := newHosts(c.listenHost, c.port, c.a.Profile.Console.AllowedHosts)
	e.Use(middleware.Recover(), allowed.guard, middleware.BodyLimit("64K"), headers)
	sub, _ := fs.Sub(static, "static")
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", http.FileServer(http.FS(sub)))))
	csrf := middleware.CSRFWithConfig(middleware.CSRFConfig{
		TokenLookup: "form:" + csrfField, CookieName: "homeport_csrf_" + c.port, CookiePath: "/",
		CookieHTTPOnly: true, CookieSameSite: http.SameSiteStrictMode, ContextKey: "csrf",
	})
	e.GET("/login", c.loginPage, csrf)
	e.POST("/login", c.doLogin, csrf)
	g := e.Group("", csrf, c.requireLogin)
	g.GET("/", c.dashboard)
	g.GET("/status.json", c.statusJSON)
	g.GET("/events", c.events)
	g.POST("/logout", c.logout)
	g.POST("/connect", c.act(func(ctx context.Context, _ echo.Context) (string, error) {
		return "connected", c.a.Connect(ctx)
	}))
	g.POST("/disconnect", c.act(func(ctx context.Context, _ echo.Context) (string, error) {
		return "disconnected", c.a.Disconnect(ctx)
	}))
	g.POST("/domains", c.act(c.addDomain))
	g.POST("/domains/remove", c.act(c.removeDomain))
	g.POST("/entries", c.act(c.addEntry))
	g.POST("/entries/:id/:action", c.act(c.entryAction))
	g.POST("/certs/issue", c.act(c.issueCert(false)))
	g.POST("/certs/renew", c.act(c.issueCert(true)))
	return e
}

// Serve runs the console on ln until ctx ends. It answers on ln's port
// (which may differ from Options.Listen's, when that was :0).
func (c *Console) Serve(ctx context.Context, ln net.Listener) error {
	if _, port, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		c.port = port
	}
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		return next(c)
	}
}

func (c *Console) requireLogin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		if !c.login {
			return next(ec)
		}
		if ck, err := ec.Cookie(c.sessionCookie()); err == nil && c.sessions.use(ck.Value, true) {
			ec.Set(ctxSession, ck.Value)
			return next(ec)
		}
		return ec.Redirect(http.StatusSeeOther, "/login")
	}
}

func (c *Console) loginPage(ec echo.Context) error {
	return c.render(ec, http.StatusOK, "login", map[string]any{"CSRF": ec.Get("csrf")})
}

func (c *Console) doLogin(ec echo.Context) error {
	if !c.login {
		return ec.Redirect(http.StatusSeeOther, "/") // no password on a loopback console
	}
	done, wait := c.throttle.begin(ec.RealIP())
	if done == nil {
		secs := int((wait + time.Second - 1) / time.Second)
		ec.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		return c.render(ec, http.StatusTooManyRequests, "login", map[string]any{"CSRF": ec.Get("csrf"),
			"Error": fmt.Sprintf("too many failed logins; try again in %d s", secs)})
	}
	err := bcrypt.CompareHashAndPassword([]byte(c.a.Profile.Console.PasswordHash), []byte(ec.FormValue("password")))
	done(err == nil)
	if err != nil {
		return c.render(ec, http.StatusUnauthorized, "login", map[string]any{"CSRF": ec.Get("csrf"), "Error": "wrong password"})
	}
	if ck, err := ec.Cookie(c.sessionCookie()); err == nil {
		c.sessions.revoke(ck.Value)
	}
	id, err := c.sessions.create()
	if err != nil {
		return err
	}
	ec.SetCookie(&http.Cookie{Name: c.sessionCookie(), Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: ec.Scheme() == "https", MaxAge: int(SessionMax / time.Second)})
	return ec.Redirect(http.StatusSeeOther, "/")
}

func (c *Console) logout(ec echo.Context) error {
	if id, ok := ec.Get(ctxSession).(string); ok {
		c.sessions.revoke(id)
	}
	ec.SetCookie(&http.Cookie{Name: c.sessionCookie(), Value: "", Path: "/", MaxAge: -1})
	return ec.Redirect(http.StatusSeeOther, "/login")
}

// view is everything the dashboard shows.
type view struct {
	CSRF    any
	Login   bool // the console has a password (and a logout button)
	Status  control.Status
	Home    *proto.Home
	Domains []proto.BaseDomain
	Entries []store.Entry
	States  map[uint64]control.ForwardStatus
	Certs   map[string]*certs.Info // by domain
	// Traffic is each entry's traffic (traffic.go), by ID.
	Traffic map[uint64]trafficView
	// Pending are the open https entries that terminate TLS while no
	// certificate for their name is in service.
	Pending []pendingCert
	CA      string
	// CloudURL is where the account changes what the home cannot (its
	// bandwidth limit).
	CloudURL string
	Notice   string
	Error    string
	Form     map[string]string
}

// pendingCert is one https entry's "certificate pending" warning.
type pendingCert struct {
	Domain, Public, Notice string
}

func (c *Console) dashboard(ec echo.Context) error {
	return c.show(ec, http.StatusOK, ec.QueryParam("notice"), "", nil)
}

func (c *Console) show(ec echo.Context, status int, notice, errText string, form map[string]string) error {
	ctx, cancel := context.WithTimeout(ec.Request().Context(), 10*time.Second)
	defer cancel()
	v := view{CSRF: ec.Get("csrf"), Login: c.login, Status: c.a.Status(), Notice: notice, Error: errText, Form: form}
	slug := c.a.Profile.Cloud.Home
	if h, err := c.a.Cloud.Home(ctx, slug); err == nil {
		v.Home = &h
		if ds, err := c.a.Cloud.BaseDomains(ctx, slug); err == nil {
			v.Domains = ds
		}
	} else if v.Error == "" {
		v.Error = "cannot read the home from the cloud: " + err.Error()
	}
	es, err := c.a.DB.Entries(ctx)
	if err != nil {
		// A refused hand edit: show what runs, and why the edit did not.
		es = c.a.Entries()
		v.Status.ConfigError = err.Error()
	}
	v.Entries = es
	v.Traffic = map[uint64]trafficView{}
	for _, e := range es {
		v.Traffic[e.ID] = newTrafficView(c.a.Traffic(e.Public()))
	}
	v.States = map[uint64]control.ForwardStatus{}
	for _, f := range v.Status.Forwards {
		v.States[f.Entry] = f
	}
	v.Certs = map[string]*certs.Info{}
	for i := range v.Status.Certificates {
		v.Certs[v.Status.Certificates[i].Domain] = &v.Status.Certificates[i]
	}
	now := time.Now()
	for _, e := range es {
		if e.Scheme != proto.SchemeHTTPS || e.Mode != store.ModeTerminate || !e.Enabled {
			continue
		}
		if notice := certs.PendingNotice(v.Certs[e.Host], now); notice != "" {
			v.Pending = append(v.Pending, pendingCert{Domain: e.Host, Public: e.Public(), Notice: notice})
		}
	}
	v.CA = c.a.Profile.ACME.Directory()
	v.CloudURL = c.a.Profile.Cloud.URL
	return c.render(ec, status, "dashboard", v)
}

func (c *Console) render(ec echo.Context, status int, name string, data any) error {
	var b strings.Builder
	if err := c.pages.ExecuteTemplate(&b, name, data); err != nil {
		return err
	}
	return ec.HTML(status, b.String())
}

func (c *Console) statusJSON(ec echo.Context) error {
	return ec.JSON(http.StatusOK, c.a.Status())
}

// events streams the status as server-sent events: at once, after every
// change, and every 2 s (the "local service listening" indicators).
func (c *Console) events(ec echo.Context) error {
	w := ec.Response()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	changes, stop := c.a.Subscribe()
	defer stop()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	id, _ := ec.Get(ctxSession).(string)
	for {
		if c.login && !c.sessions.use(id, false) {
			return nil // logged out or expired: the stream ends with the session
		}
		if err := writeEvent(w, c.liveStatus()); err != nil {
			return nil
		}
		select {
		case <-ec.Request().Context().Done():
			return nil
		case <-changes:
		case <-tick.C:
		}
	}
}

// act runs a form action, then redirects to the dashboard with a notice
// (post/redirect/get), or re-renders it with the error and the input kept.
func (c *Console) act(fn func(context.Context, echo.Context) (string, error)) echo.HandlerFunc {
	return func(ec echo.Context) error {
		ctx, cancel := context.WithTimeout(ec.Request().Context(), 60*time.Second)
		defer cancel()
		notice, err := fn(ctx, ec)
		if err != nil {
			form := map[string]string{}
			if vals, perr := ec.FormParams(); perr == nil {
				for k := range vals {
					if k != csrfField {
						form[k] = vals.Get(k)
					}
				}
			}
			status := http.StatusBadRequest
			var ce *cloudapi.Error
			if errors.As(err, &ce) {
				status = ce.Status
			}
			return c.show(ec, status, "", err.Error(), form)
		}
		return ec.Redirect(http.StatusSeeOther, "/?notice="+urlQuery(notice))
	}
}
