package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"homeport.dev/proto/testnet"
)

const chromiumPath = "/usr/bin/chromium"

// TestBrowserAddDomain drives a real headless Chromium through login, the
// add-base-domain form and a new token's copy button, so the CSP, the
// cookies and the CSRF check are exercised the way a browser applies them.
func TestBrowserAddDomain(t *testing.T) {
	browser := chromium(t)
	e := newEnv(t)
	u := e.user("carol", true, false)
	h, err := e.app.Homes.Claim(context.Background(), u, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	form := "#add-domain-" + h.Slug
	list := "ul#domains-" + h.Slug
	run, cancelRun := context.WithTimeout(browser, 15*time.Second)
	defer cancelRun()
	err = chromedp.Do(run,
		chromedp.Navigate(e.url+"/login"),
		chromedp.WaitVisible(`input[name="username"]`),
		chromedp.SendKeys(`input[name="username"]`, "carol"),
		chromedp.SendKeys(`input[name="password"]`, "password-carol"),
		chromedp.Submit(`input[name="password"]`),
		chromedp.WaitVisible(form+` input[name="domain"]`),
		chromedp.SendKeys(form+` input[name="domain"]`, "carol.example.com"),
		chromedp.Click(form+` button`),
		chromedp.WaitVisible(list),
	)
	var domains, notice string
	if err == nil {
		domains, err = chromedp.Run(run, chromedp.Text(list))
	}
	if err == nil {
		notice, err = chromedp.Run(run, chromedp.Text(".notice"))
	}
	if err == nil && (!strings.Contains(domains, "carol.example.com") || !strings.Contains(notice, "Base domain added")) {
		err = fmt.Errorf("domain list %q, notice %q", domains, notice)
	}
	// The page's script runs under the CSP (its nonce matches): the copy
	// button of a new token says it copied, once the clipboard answers.
	if err == nil {
		err = chromedp.Do(run,
			chromedp.Click(`#tokens button`),
			chromedp.WaitVisible(`#token-secret`),
			chromedp.Click(`button[data-copy]`),
			chromedp.Poll[chromedp.Void](`document.querySelector("button[data-copy]").textContent === "Copied"`,
				chromedp.WithPollingTimeout(3*time.Second)),
		)
		if err != nil {
			err = fmt.Errorf("the copy button never said Copied (did the CSP block the page's script?): %w", err)
		}
	}
	if err != nil {
		screenshot(t, browser)
		t.Fatal(err)
	}
	ds, err := e.app.Domains.List(context.Background(), h.ID)
	if err != nil || len(ds) != 1 || ds[0].Domain != "carol.example.com" {
		t.Fatalf("stored base domains = %v, %v", ds, err)
	}
}

// chromium starts a headless Chromium for the test (skipped when missing)
// and returns its context; the browser stops when the test ends.
func chromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		testnet.Missing(t, "headless browser test: "+chromiumPath+" is missing (apt-get install -y chromium; deploy/install-deps.sh does)")
	}
	// Chromium may still be writing its profile as it exits; a TempDir that
	// fails to clean up would fail the test, so the profile is removed by hand.
	profile, err := os.MkdirTemp("", "homeport-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
	)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)

	// The first Run starts the browser and binds its life to its context, so
	// it gets none of the test's timeouts.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return browser
}

// screenshot saves the page the browser shows, into $HOMEPORT_ARTIFACTS
// when set, otherwise a directory that outlives the test.
func screenshot(t *testing.T, browser context.Context) {
	t.Helper()
	dir := os.Getenv("HOMEPORT_ARTIFACTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "homeport-web-test-"); err != nil {
			t.Log(err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(browser, 5*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	path := filepath.Join(dir, t.Name()+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Log(err)
		return
	}
	t.Logf("screenshot of the page: %s", path)
}
