package console_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/certs/pebbletest"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/console"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/profile"
	"homeport.dev/home/internal/store"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto/testnet"
)

const chromiumPath = "/usr/bin/chromium"

func TestMain(m *testing.M) { os.Exit(hometest.Main(m)) }

// TestDashboardInChromium drives the console in a real headless Chromium
// against a real cloud and a real ACME CA (Pebble): add a base domain, add
// an https passthrough forward, watch its state turn "up" live, add an
// https forward terminated at home, watch its certificate turn "valid"
// live, Disconnect all, watch the forwards turn "down".
func TestDashboardInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		testnet.Missing(t, "headless browser test: "+chromiumPath+" is missing (apt-get install -y chromium; deploy/install-deps.sh does)")
	}
	c := hometest.Start(t, hometest.Options{})
	u := c.CreateUser(t, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, _, err := profile.Register(ctx, profile.RegisterOptions{Cloud: c.APIURL, Token: u.Token, Output: filepath.Join(t.TempDir(), "profile")})
	if err != nil {
		t.Fatal(err)
	}
	ca := pebbletest.Start(t, pebbletest.Options{HTTPPort: port(t, c.HTTPAddr), TLSPort: port(t, c.HTTPSAddr)})
	p.ACME = config.ACME{CAURL: ca.Directory, TrustedRoots: ca.RootsFile}
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	db := store.Open(p)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := agent.New(p, db, agent.Options{Log: log, Tunnel: tunnel.Config{MaxBackoff: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(ctx) }()
	defer func() { cancel(); <-agentDone }()
	con, err := console.New(a, console.Options{Listen: "127.0.0.1:0", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go con.Serve(ctx, ln)
	url := "http://" + ln.Addr().String()
	// A local TLS-ish service for the passthrough forward to point at.
	local, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()

	browser := startChromium(t)
	run, cancelRun := context.WithTimeout(browser, 30*time.Second)
	defer cancelRun()
	state := func(want string) chromedp.Action[bool] {
		return chromedp.Poll[bool](`(() => { const es = [...document.querySelectorAll('[data-entry-state]')]; return es.length > 0 && es.every(e => e.textContent === '`+want+`'); })()`,
			chromedp.WithPollingTimeout(15*time.Second))
	}
	err = chromedp.Do(run,
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(`#add-domain input[name="domain"]`),
		chromedp.SendKeys(`#add-domain input[name="domain"]`, "example.com"),
		chromedp.Click(`#add-domain button`),
		chromedp.WaitVisible(`.notice`),
	)
	var domains string
	if err == nil {
		domains, err = chromedp.Run(run, chromedp.Text(`#domains`))
	}
	if err == nil && !strings.Contains(domains, "example.com") {
		t.Errorf("domains list after adding = %q", domains)
	}
	if err == nil {
		err = chromedp.Do(run,
			chromedp.SetValue(`#add-entry select[name="scheme"]`, "https"),
			chromedp.SendKeys(`#add-entry input[name="host"]`, "app.example.com"),
			chromedp.SendKeys(`#add-entry input[name="target"]`, local.Addr().String()),
			chromedp.SetValue(`#add-entry select[name="mode"]`, "passthrough"),
			chromedp.Click(`#add-entry button`),
			chromedp.WaitVisible(`[data-entry-state]`),
		)
	}
	if err == nil {
		_, err = chromedp.Run(run, state("up"))
	}
	// A plain-HTTP app behind an https name: the form's "auto" mode probes
	// it and terminates TLS at home; the certificate's state turns valid
	// live, on the entry's row and in the certificates table.
	if err == nil {
		err = chromedp.Do(run,
			chromedp.SetValue(`#add-entry select[name="scheme"]`, "https"),
			chromedp.SendKeys(`#add-entry input[name="host"]`, "secure.example.com"),
			chromedp.SendKeys(`#add-entry input[name="target"]`, web.Listener.Addr().String()),
			chromedp.Click(`#add-entry button`),
			chromedp.WaitVisible(`[data-entry-cert="secure.example.com"]`),
		)
	}
	if err == nil {
		_, err = chromedp.Run(run, chromedp.Poll[bool](`(() => {
			const a = document.querySelector('[data-entry-cert="secure.example.com"]'), b = document.querySelector('[data-cert-state="secure.example.com"]'),
				ch = document.querySelector('[data-cert-challenge="secure.example.com"]'), pass = document.querySelector('[data-entry-cert="app.example.com"]');
			return !!a && !!b && !!ch && !!pass && a.textContent.startsWith('valid until') && b.textContent.startsWith('valid until') &&
				ch.textContent === 'tls-alpn-01' && pass.textContent === '-'; })()`,
			chromedp.WithPollingTimeout(20*time.Second)))
	}
	if err == nil {
		// The page still shows the last action's notice: drop it, so that
		// the one waited for is the new page's.
		_, err = chromedp.Run(run, chromedp.Evaluate[bool](`(document.querySelectorAll('.notice').forEach(e => e.remove()), true)`))
	}
	if err == nil {
		err = chromedp.Do(run, chromedp.Click(`#disconnect-all`), chromedp.WaitVisible(`.notice`))
	}
	if err == nil {
		_, err = chromedp.Run(run, state("down"))
	}
	if err != nil {
		path := screenshot(t, browser, "console-dashboard.png")
		t.Fatalf("dashboard flow: %v (screenshot %s; status %+v)", err, path, a.Status())
	}
	// The browser's view matches the agent's truth.
	if st := a.Status(); st.Tunnel.State != "stopped" || len(st.Forwards) != 2 || st.Forwards[0].Up || st.Forwards[1].Up {
		t.Errorf("after Disconnect all: %+v", st)
	}
	if es, _ := db.Entries(ctx); len(es) != 2 || es[0].Mode != "passthrough" || es[1].Mode != "terminate" {
		t.Errorf("entries: %+v; want the second probed to terminate", es)
	}
}

// startChromium starts a headless Chromium for the test (stopped when it
// ends), or skips the test when there is none.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		testnet.Missing(t, "headless browser test: "+chromiumPath+" is missing (apt-get install -y chromium; deploy/install-deps.sh does)")
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()),
	)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	// Cleanups run last-in first-out: the browser closes before its
	// allocator, and both before the profile directory goes.
	t.Cleanup(cancelAlloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return browser
}

// screenshot writes the browser's whole page to name in $HOMEPORT_ARTIFACTS
// (or a new directory under the system's temporary one, kept) and returns
// the file's path.
func screenshot(t *testing.T, browser context.Context, name string) string {
	t.Helper()
	shot, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	artifacts := os.Getenv("HOMEPORT_ARTIFACTS")
	if artifacts == "" {
		artifacts, _ = os.MkdirTemp("", "homeport-artifacts-")
	}
	os.MkdirAll(artifacts, 0o755)
	path := filepath.Join(artifacts, name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
	}
	return path
}

func port(t *testing.T, addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNonLoopbackConsoleNeedsAPassword(t *testing.T) {
	if console.Loopback("0.0.0.0:8001") || !console.Loopback("127.0.0.1:8001") || !console.Loopback("[::1]:8001") {
		t.Fatal("Loopback misclassifies addresses")
	}
	if _, err := console.HashPassword("short"); err == nil {
		t.Error("a short password was accepted")
	}
}
