package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"homeport.dev/home/internal/console"
)

// TestConsoleAnswersOnlyItsOwnNames: a page whose name was rebound to
// 127.0.0.1 reaches the console with its own name in Host. The console
// refuses it (no dashboard, no CSRF token, no action), and answers to
// 127.0.0.1, localhost, [::1] and the names in console.allowed_hosts.
func TestConsoleAnswersOnlyItsOwnNames(t *testing.T) {
	s := startSite(t, siteOptions{allowedHosts: []string{"nas.lan"}})
	b := s.browser()
	for _, host := range []string{"evil.example:" + s.port, "evil.example", "localhost.evil.example:" + s.port, "127.0.0.1.nip.io:" + s.port} {
		for _, path := range []string{"/", "/login", "/status.json", "/static/console.js"} {
			a := b.get(path, map[string]string{"Host": host})
			if a.status != http.StatusForbidden || strings.Contains(a.body, `name="csrf"`) || strings.Contains(a.body, s.a.Profile.Cloud.Home) ||
				!strings.Contains(a.body, "console.allowed_hosts") {
				t.Errorf("GET %s with Host %s = %d, want 403 saying how to allow the name:\n%s", path, host, a.status, a.body)
			}
		}
	}
	// A rebound page cannot post either, even with a token it got elsewhere.
	b.get("/", nil)
	if a := b.post("/domains", url.Values{"domain": {"rebound.example.com"}}, map[string]string{"Host": "evil.example:" + s.port}); a.status != http.StatusForbidden {
		t.Errorf("POST with Host evil.example = %d, want 403", a.status)
	}
	if ds, err := s.a.Cloud.BaseDomains(context.Background(), s.a.Profile.Cloud.Home); err != nil || len(ds) != 0 {
		t.Errorf("base domains after the refused post: %v %v", ds, err)
	}
	for _, host := range []string{"127.0.0.1:" + s.port, "localhost:" + s.port, "LOCALHOST:" + s.port, "[::1]:" + s.port, "nas.lan", "nas.lan:8443"} {
		b.csrf = ""
		if a := b.get("/", map[string]string{"Host": host}); a.status != http.StatusOK || b.csrf == "" {
			t.Errorf("GET / with Host %s = %d, want the dashboard", host, a.status)
		}
	}
	if a := b.get("/", map[string]string{"Host": "localhost:1"}); a.status != http.StatusForbidden {
		t.Errorf("GET / with Host localhost on another port = %d, want 403", a.status)
	}
}

// TestConsoleRefusesCrossOriginPosts: a form posted from another site (by
// Origin, Referer or Sec-Fetch-Site) changes nothing, even with a valid
// CSRF token and cookie; the console's own page still works.
func TestConsoleRefusesCrossOriginPosts(t *testing.T) {
	s := startSite(t, siteOptions{})
	b := s.browser()
	b.get("/", nil)
	own := "http://127.0.0.1:" + s.port
	refused := map[string]map[string]string{
		"a.example.com": {"Origin": "http://evil.example"},
		"b.example.com": {"Origin": "null"},
		"c.example.com": {"Origin": "http://localhost:3000"}, // another local app
		"d.example.com": {"Referer": "http://evil.example/page"},
		"e.example.com": {"Origin": own, "Sec-Fetch-Site": "cross-site"},
		"f.example.com": {"Origin": "http://127.0.0.1:" + s.port + ".evil.example"},
		"g.example.com": {"Origin": "http://192.0.2.66:" + s.port}, // the attacker's own address
	}
	for domain, header := range refused {
		if a := b.post("/domains", url.Values{"domain": {domain}}, header); a.status != http.StatusForbidden {
			t.Errorf("POST /domains with %v = %d, want 403:\n%s", header, a.status, a.body)
		}
	}
	if a := b.post("/domains", url.Values{"domain": {"own.example.com"}}, map[string]string{"Origin": own, "Sec-Fetch-Site": "same-origin"}); a.status != http.StatusSeeOther {
		t.Fatalf("POST /domains from the console's own page = %d:\n%s", a.status, a.body)
	}
	ds, err := s.a.Cloud.BaseDomains(context.Background(), s.a.Profile.Cloud.Home)
	if err != nil || len(ds) != 1 || ds[0].Domain != "own.example.com" {
		t.Errorf("base domains = %v %v; want only own.example.com", ds, err)
	}
}

// TestConsoleLogoutEndsTheSession: after /logout, the session cookie (as an
// attacker who copied it would replay it) no longer opens anything.
func TestConsoleLogoutEndsTheSession(t *testing.T) {
	s := startSite(t, siteOptions{listen: "0.0.0.0:8001", password: true})
	b := s.browser()
	if a := b.login(password); a.status != http.StatusSeeOther {
		t.Fatalf("login = %d", a.status)
	}
	stolen := b.session()
	if stolen == nil || !b.loggedIn() {
		t.Fatal("no session after login")
	}
	other := s.browser()
	other.login(password)
	b.get("/", nil)
	if a := b.post("/logout", nil, nil); a.status != http.StatusSeeOther || a.header.Get("Location") != "/login" {
		t.Fatalf("logout = %d %s", a.status, a.header.Get("Location"))
	}
	replay := s.browser()
	if a := replay.get("/status.json", map[string]string{"Cookie": stolen.Name + "=" + stolen.Value}); a.status != http.StatusSeeOther {
		t.Errorf("session cookie after logout = %d, want the redirect to /login:\n%s", a.status, a.body)
	}
	if !other.loggedIn() {
		t.Error("logging out one browser logged out the other")
	}
	if o := other.session(); o == nil || o.Value == stolen.Value {
		t.Errorf("two logins share the session %v", o)
	}
}

// TestConsoleSessionsExpire: a session ends after an hour without a request,
// and after 12 hours whatever the activity.
func TestConsoleSessionsExpire(t *testing.T) {
	s := startSite(t, siteOptions{listen: "0.0.0.0:8001", password: true})
	b := s.browser()
	b.login(password)
	s.clock.Advance(console.SessionIdle - time.Minute)
	if !b.loggedIn() {
		t.Fatal("session ended before the idle timeout")
	}
	s.clock.Advance(console.SessionIdle)
	if b.loggedIn() {
		t.Fatal("an idle session outlived the idle timeout")
	}
	b.login(password)
	step := console.SessionIdle / 2
	for i := 1; i < int(console.SessionMax/step); i++ {
		s.clock.Advance(step)
		if !b.loggedIn() {
			t.Fatalf("an active session ended after %v", time.Duration(i)*step)
		}
	}
	s.clock.Advance(step)
	if b.loggedIn() {
		t.Fatalf("a session outlived its %v lifetime", console.SessionMax)
	}
}

// TestConsoleThrottlesPasswordGuessing: 20 parallel wrong passwords get
// mostly 429 with Retry-After; after the wait the right password still
// logs in.
func TestConsoleThrottlesPasswordGuessing(t *testing.T) {
	s := startSite(t, siteOptions{listen: "0.0.0.0:8001", password: true})
	b := s.browser()
	b.get("/login", nil)
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		wg     sync.WaitGroup
	)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := b.login("wrong passphrase")
			mu.Lock()
			defer mu.Unlock()
			counts[a.status]++
			if a.status == http.StatusTooManyRequests && a.header.Get("Retry-After") == "" {
				t.Error("a 429 without Retry-After")
			}
		}()
	}
	wg.Wait()
	if counts[http.StatusTooManyRequests] < 15 || counts[http.StatusSeeOther] > 0 || counts[http.StatusTooManyRequests]+counts[http.StatusUnauthorized] != 20 {
		t.Fatalf("20 parallel wrong passwords got %v; want most 429, the rest 401", counts)
	}
	// Wrong guesses one after another reach the backoff too.
	var last answer
	for range 6 {
		if last = b.login("wrong passphrase"); last.status == http.StatusTooManyRequests {
			break
		}
	}
	if last.status != http.StatusTooManyRequests {
		t.Fatalf("sequential wrong passwords never throttled: %d", last.status)
	}
	// During the wait even the right password is turned away ...
	a := b.login(password)
	wait, err := strconv.Atoi(a.header.Get("Retry-After"))
	if a.status != http.StatusTooManyRequests || err != nil || wait < 1 || !strings.Contains(a.body, "try again in") {
		t.Fatalf("right password during the backoff = %d, Retry-After %q:\n%s", a.status, a.header.Get("Retry-After"), a.body)
	}
	if b.loggedIn() {
		t.Fatal("logged in during the backoff")
	}
	// ... and after it, it logs in.
	s.clock.Advance(time.Duration(wait) * time.Second)
	if a := b.login(password); a.status != http.StatusSeeOther || !b.loggedIn() {
		t.Fatalf("right password after the backoff = %d:\n%s", a.status, a.body)
	}
}
