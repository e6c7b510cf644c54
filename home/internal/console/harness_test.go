package console_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/console"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/profile"
	"homeport.dev/home/internal/store"
)

const password = "a long passphrase"

// clock is a settable clock for sessions and login throttling.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// site is a console served on a real loopback listener, for a registered
// home of a real cloud.
type site struct {
	t     *testing.T
	a     *agent.Agent
	url   string // http://127.0.0.1:PORT
	port  string
	clock *clock
}

type siteOptions struct {
	listen       string   // what the console is told it listens on; default 127.0.0.1:0
	password     bool     // set the console password
	allowedHosts []string // console.allowed_hosts
}

func startSite(t *testing.T, o siteOptions) *site {
	t.Helper()
	c := hometest.Start(t, hometest.Options{})
	u := c.CreateUser(t, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p, _, err := profile.Register(ctx, profile.RegisterOptions{Cloud: c.APIURL, Token: u.Token, Output: filepath.Join(t.TempDir(), "profile")})
	if err != nil {
		t.Fatal(err)
	}
	if o.password {
		if p.Console.PasswordHash, err = console.HashPassword(password); err != nil {
			t.Fatal(err)
		}
	}
	p.Console.AllowedHosts = o.allowedHosts
	db := store.Open(p)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := agent.New(p, db, agent.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if o.listen == "" {
		o.listen = "127.0.0.1:0"
	}
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	con, err := console.New(a, console.Options{Listen: o.listen, Log: log, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- con.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &site{t: t, a: a, url: "http://" + ln.Addr().String(), port: port, clock: clk}
}

// browser is a client with a cookie jar that follows no redirects and
// remembers the CSRF token of the last page it saw.
type browser struct {
	s    *site
	c    *http.Client
	mu   sync.Mutex // guards csrf: some tests post in parallel
	csrf string
}

func (s *site) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{s: s, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// answer is what a request got back.
type answer struct {
	status int
	header http.Header
	body   string
}

// do sends a request; header may set Host (as "Host") and any other header.
func (b *browser) do(method, path string, form url.Values, header map[string]string) answer {
	b.s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.s.url+path, body)
	if err != nil {
		b.s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.s.t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(text); m != nil {
		b.mu.Lock()
		b.csrf = string(m[1])
		b.mu.Unlock()
	}
	return answer{resp.StatusCode, resp.Header, string(text)}
}

func (b *browser) get(path string, header map[string]string) answer {
	b.s.t.Helper()
	return b.do(http.MethodGet, path, nil, header)
}

// post submits a form with the CSRF token of the last page seen.
func (b *browser) post(path string, form url.Values, header map[string]string) answer {
	b.s.t.Helper()
	b.mu.Lock()
	f := url.Values{"csrf": {b.csrf}}
	b.mu.Unlock()
	for k, v := range form {
		f[k] = v
	}
	return b.do(http.MethodPost, path, f, header)
}

// login logs in with pw and returns the answer to the form.
func (b *browser) login(pw string) answer {
	b.s.t.Helper()
	b.mu.Lock()
	token := b.csrf
	b.mu.Unlock()
	if token == "" {
		b.get("/login", nil)
	}
	return b.post("/login", url.Values{"password": {pw}}, nil)
}

// session is the value of the console's session cookie in the jar.
func (b *browser) session() *http.Cookie {
	u, _ := url.Parse(b.s.url)
	for _, c := range b.c.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "homeport_console") {
			return c
		}
	}
	return nil
}

// loggedIn reports whether the browser sees the home's status (not the
// login page).
func (b *browser) loggedIn() bool {
	b.s.t.Helper()
	a := b.get("/status.json", nil)
	return a.status == http.StatusOK && strings.Contains(a.body, b.s.a.Profile.Cloud.Home)
}
