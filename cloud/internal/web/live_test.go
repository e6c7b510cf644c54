package web_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/serve"
)

// liveCloud is a running cloud (SSH endpoint included) with an admin,
// "root", and a home of alice's.
func liveCloud(t *testing.T) (*cloudtest.Cloud, *env, cloudtest.Home) {
	t.Helper()
	c := cloudtest.Start(t, cloudtest.Options{})
	e := &env{t: t, app: c.App, url: c.APIURL}
	e.user("root", true, true)
	return c, e, c.NewHome(t, "alice")
}

// connect logs the home in and has it answer every visitor of its first
// tunnel port: it reads 1234 bytes and sends 4321 back.
func connect(t *testing.T, c *cloudtest.Cloud, h cloudtest.Home) *ssh.Client {
	t.Helper()
	cl, err := c.Dial(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	cloudtest.Forward(t, cl, h.Tunnel.First, func(conn net.Conn) {
		defer conn.Close()
		if _, err := io.ReadFull(conn, make([]byte, 1234)); err == nil {
			conn.Write(bytes.Repeat([]byte("o"), 4321))
		}
		io.Copy(io.Discard, conn)
	})
	return cl
}

// visit sends a visitor's 1234 bytes through the home's tunnel and reads
// the 4321 of the answer.
func visit(t *testing.T, h cloudtest.Home) {
	t.Helper()
	v, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", h.Tunnel.First), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	v.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := v.Write(bytes.Repeat([]byte("i"), 1234)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(v, make([]byte, 4321)); err != nil {
		t.Fatal(err)
	}
}

// waitCounted waits until the SSH endpoint counted the visit, then closes
// a sampling step so the recorder has it too.
func waitCounted(t *testing.T, c *cloudtest.Cloud, h cloudtest.Home) {
	t.Helper()
	for i := 0; ; i++ {
		st := c.App.SSH.Stats()[h.ID]
		if st.BytesIn == 1234 && st.BytesOut == 4321 {
			break
		}
		if i == 500 {
			t.Fatalf("the visit was not counted: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	counts, online := c.App.SSH.Counts()
	c.App.Traffic.Sample(time.Now(), counts, online)
}

// TestAdminDashboardShowsOnlineHomesAndTraffic checks the operator's page:
// an online home with its client address, agent, forwards and traffic,
// and charts; its owner sees the same on their dashboard; a non-admin
// cannot open the operator's page or its event stream.
func TestAdminDashboardShowsOnlineHomesAndTraffic(t *testing.T) {
	c, e, h := liveCloud(t)
	cl := connect(t, c, h)
	visit(t, h)
	waitCounted(t, c, h)
	addr := cl.LocalAddr().String() // the address the cloud sees the home at

	root := e.browser()
	root.login("root")
	status, page := root.get("/admin")
	must(t, "admin dashboard", status, page, http.StatusOK,
		"Operator dashboard", `data-home="`+h.Slug+`"`, "online", addr, "SSH-2.0-Go", "1.2 kB / 4.3 kB",
		`id="homes-online">1</span> of 1`, "HAProxy <code>off</code>", "in sync", "All traffic, last hour", "Connected homes, last day", `class="line in"`)
	if row := page[strings.Index(page, `data-home="`+h.Slug+`"`):]; !strings.Contains(row[:strings.Index(row, "</tr>")], "1 port · 0 / 0") {
		t.Errorf("forwards: the home forwards 1 port and has no mapping: %s", row[:strings.Index(row, "</tr>")])
	}

	// /metrics has the same series: the totals and the home's rate.
	resp, err := http.Get(c.APIURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`homeport_traffic_bytes_total{direction="in"} 1234`, `homeport_traffic_bytes_total{direction="out"} 4321`,
		`homeport_traffic_home_bytes_per_second{direction="in",home="` + h.Slug + `"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The event stream sends the same live part at once.
	first := firstEvent(t, root, "/admin/events")
	for _, want := range []string{`"admin-live"`, h.Slug, addr} {
		if !strings.Contains(first, want) {
			t.Errorf("first admin event lacks %q: %s", want, first)
		}
	}

	alice := e.browser()
	alice.login("alice")
	status, page = alice.get("/dashboard")
	must(t, "alice's dashboard", status, page, http.StatusOK, `id="live-`+h.Slug+`"`, "online", "since", addr,
		"1.2 kB to the home, 4.3 kB from it", "1 tunnel port forwarded; 0 of 0 mappings up", "Traffic of "+h.Slug+", last hour", `class="line in"`)
	if first := firstEvent(t, alice, "/events"); !strings.Contains(first, `"live-`+h.Slug+`"`) || !strings.Contains(first, addr) {
		t.Errorf("alice's first event lacks her home's live part: %s", first)
	}
	for _, p := range []string{"/admin", "/admin/events"} {
		status, page = alice.get(p)
		if status != http.StatusForbidden || strings.Contains(page, addr) {
			t.Errorf("alice GET %s = %d, want 403 without the home's address:\n%s", p, status, page)
		}
	}
	bob := e.browser()
	e.user("bob", true, false)
	bob.login("bob")
	if _, page := bob.get("/dashboard"); strings.Contains(page, h.Slug) || strings.Contains(page, addr) {
		t.Errorf("bob's dashboard shows alice's home:\n%s", page)
	}
}

// firstEvent opens an event stream with b's cookies and returns its first
// event's data.
func firstEvent(t *testing.T, b *browser, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first event line %q, %v", line, err)
	}
	return strings.ReplaceAll(line, `\u003c`, "<")
}

// TestBrowserAdminDashboardIsLive opens the operator's dashboard in a real
// Chromium: the traffic chart is drawn (an SVG with paths), and when a
// home connects its row turns online without a reload.
func TestBrowserAdminDashboardIsLive(t *testing.T) {
	browser := chromium(t)
	c, _, h := liveCloud(t)
	// Two steps of history, so the charts have lines.
	for range 2 {
		counts, online := c.App.SSH.Counts()
		c.App.Traffic.Sample(time.Now(), counts, online)
	}
	state := `document.querySelector('[data-home="` + h.Slug + `"] .state').textContent`
	run, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	var paths int
	var before string
	err := chromedp.Do(run,
		chromedp.Navigate(c.APIURL+"/login"),
		chromedp.WaitVisible(`input[name="username"]`),
		chromedp.SendKeys(`input[name="username"]`, "root"),
		chromedp.SendKeys(`input[name="password"]`, "password-root"),
		chromedp.Submit(`input[name="password"]`),
		chromedp.WaitVisible(`form[action="/logout"]`), // logged in: the login page has no such form
		chromedp.Navigate(c.APIURL+"/admin"),
		chromedp.WaitVisible(`#admin-live svg.chart path.line`),
	)
	if err == nil {
		paths, err = chromedp.Run(run, chromedp.Evaluate[int](`document.querySelectorAll('#admin-live svg[aria-label="All traffic, last hour"] path.line').length`))
	}
	if err == nil {
		before, err = chromedp.Run(run, chromedp.Evaluate[string](state))
	}
	if err == nil { // a reload would lose this mark
		_, err = chromedp.Run(run, chromedp.Evaluate[bool](`window.sameDocument = true`))
	}
	if err == nil && (paths != 2 || before != "offline") {
		err = fmt.Errorf("the hour's traffic chart has %d lines (want in and out), home state %q (want offline)", paths, before)
	}
	var addr string
	if err == nil {
		cl := connect(t, c, h)
		addr = cl.LocalAddr().String()
		err = chromedp.Do(run, chromedp.Poll[chromedp.Void](state+` === "online" && window.sameDocument === true`, chromedp.WithPollingTimeout(20*time.Second)))
		if err != nil {
			err = fmt.Errorf("the home's row never turned online without a reload: %w", err)
		}
	}
	var row string
	if err == nil {
		row, err = chromedp.Run(run, chromedp.Text(`[data-home="`+h.Slug+`"]`))
		if err == nil && !strings.Contains(row, addr) {
			err = fmt.Errorf("the online row %q lacks the home's address %s", row, addr)
		}
	}
	screenshot(t, browser)
	if err != nil {
		t.Fatal(err)
	}
}

// TestEventStreamEndsWhenCloudStops: a dashboard left open must not hold
// up the cloud's graceful shutdown, which waits for open responses (and
// gave up with an error after 10 s while a stream was open).
func TestEventStreamEndsWhenCloudStops(t *testing.T) {
	cfg, err := config.Parse([]string{"--data", t.TempDir(), "--api-addr", "127.0.0.1:0", "--ssh-addr", "127.0.0.1:0",
		"--public-host", "cloud.example.net", "--haproxy", "off", "--auth-rate", "1000", "--log-level", "error", "--shape-dev", cloudtest.ShapeDev(t)})
	if err != nil {
		t.Fatal(err)
	}
	app, err := serve.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ready := make(chan serve.Addrs, 1)
	ran := make(chan error, 1)
	go func() { ran <- app.Run(ctx, func(a serve.Addrs) { ready <- a }) }()
	var addrs serve.Addrs
	select {
	case addrs = <-ready:
	case err := <-ran:
		t.Fatal(err)
	}
	e := &env{t: t, app: app, url: "http://" + addrs.API.String()}
	e.user("root", true, true)
	root := e.browser()
	root.login("root")
	resp, err := root.c.Get(e.url + "/admin/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first event %q, %v", line, err)
	}
	stop()
	if err := <-ran; err != nil {
		t.Fatalf("with a dashboard open, the cloud stopped with: %v", err)
	}
}

// TestAdminDashboardCountsCertificates: the certificates a home reports
// obtaining show in its row of the operator's dashboard.
func TestAdminDashboardCountsCertificates(t *testing.T) {
	c, e, h := liveCloud(t)
	ctx := context.Background()
	tok, err := c.App.Accounts.CreateToken(ctx, h.User, "t")
	if err != nil {
		t.Fatal(err)
	}
	api := func(path string, body string) {
		req, _ := http.NewRequest(http.MethodPost, c.APIURL+"/api/v1/homes/"+h.Slug+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %s %s", path, resp.Status, b)
		}
	}
	api("/base-domains", `{"domain":"example.com"}`)
	api("/mappings", `{"scheme":"https","host":"app.example.com"}`)
	api("/certificates", `{"host":"app.example.com"}`)
	api("/certificates", `{"host":"app.example.com"}`)

	root := e.browser()
	root.login("root")
	_, page := root.get("/admin")
	row := page[strings.Index(page, `data-home="`+h.Slug+`"`):]
	if row = row[:strings.Index(row, "</tr>")]; !strings.Contains(row, `<td class="certs">2</td>`) {
		t.Errorf("the home's row does not count its 2 certificates: %s", row)
	}
}
