package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/console"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/profile"
	"homeport.dev/home/internal/store"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto"
	"homeport.dev/proto/testnet"
)

// live is a console of a running agent (its tunnel up) of a registered
// home of a real cloud, with the base domain example.com.
type live struct {
	t     *testing.T
	cloud *hometest.Cloud
	home  proto.Home
	a     *agent.Agent
	url   string
	// sink is a local TCP service that reads everything, then answers
	// "got N"; web a local HTTP service.
	sink, web string
}

// startLive starts the agent with the entries forwards returns (added to
// config.yaml first) and waits until every entry with a mapping is up.
func startLive(t *testing.T, forwards func(l *live) []store.Entry) *live {
	t.Helper()
	c := hometest.Start(t, hometest.Options{})
	u := c.CreateUser(t, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	p, _, err := profile.Register(ctx, profile.RegisterOptions{Cloud: c.APIURL, Token: u.Token, Output: filepath.Join(t.TempDir(), "profile")})
	if err != nil {
		t.Fatal(err)
	}
	db := store.Open(p)
	log := slog.New(slog.DiscardHandler)
	a, err := agent.New(p, db, agent.Options{Log: log, Tunnel: tunnel.Config{MaxBackoff: time.Second}, TrafficStep: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Cloud.AddBaseDomain(ctx, p.Cloud.Home, "example.com"); err != nil {
		t.Fatal(err)
	}
	h, err := a.Cloud.Home(ctx, p.Cloud.Home)
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello\n") }))
	t.Cleanup(web.Close)
	l := &live{t: t, cloud: c, home: h, a: a, web: web.Listener.Addr().String()}
	l.sink = testnet.Serve(t, testnet.Listen(t), func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d\n", n)
	})
	for _, e := range forwards(l) {
		e.Enabled = true
		if err := db.Add(ctx, &e); err != nil {
			t.Fatal(err)
		}
	}
	changes, stop := a.Subscribe()
	defer stop()
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-agentDone })
	con, err := console.New(a, console.Options{Listen: "127.0.0.1:0", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ln := testnet.Listen(t)
	served := make(chan error, 1)
	go func() { served <- con.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
	l.url = "http://" + ln.Addr().String()

	timeout := time.After(20 * time.Second)
	for {
		st, up, mapped := a.Status(), 0, 0
		for _, f := range st.Forwards {
			if f.TunnelPort != 0 {
				mapped++
			}
			if f.Up {
				up++
			}
		}
		if st.Tunnel.State == "connected" && mapped > 0 && up == mapped {
			return l
		}
		select {
		case <-changes:
		case <-timeout:
			t.Fatalf("forwards not up within 20 s: %+v", st)
		}
	}
}

// get returns the dashboard's HTML.
func (l *live) get() string {
	l.t.Helper()
	resp, err := http.Get(l.url + "/")
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		l.t.Fatalf("dashboard: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// row is the HTML of the dashboard's rows of the entry whose public side
// is public: its row and the one below it (its traffic and error).
func row(t *testing.T, page, public string) string {
	t.Helper()
	rows := strings.Split(page, "<tr ")
	for i, r := range rows[1:] {
		if strings.Contains(r, ">"+public+"<") {
			if i+2 < len(rows) && strings.HasPrefix(rows[i+2], `class="more"`) {
				r += "<tr " + rows[i+2]
			}
			return r
		}
	}
	t.Fatalf("no row for %s in the dashboard", public)
	return ""
}

// TestForwardRowShowsTraffic: bytes sent through a tcp forward show in its
// row (in and out, a rate) with an SVG chart of the last hour, and not in
// another forward's row.
func TestForwardRowShowsTraffic(t *testing.T) {
	l := startLive(t, func(l *live) []store.Entry {
		return []store.Entry{
			{Scheme: "tcp", PublicPort: l.home.TCPPorts.First, Target: l.sink},
			{Scheme: "http", Host: "web.example.com", Target: l.web},
		}
	})
	const sent = 2_500_000
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", l.home.TCPPorts.First))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write(make([]byte, sent)); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	if reply, err := io.ReadAll(conn); err != nil || string(reply) != fmt.Sprintf("got %d\n", sent) {
		t.Fatalf("the service answered %q (%v)", reply, err)
	}

	tcp := fmt.Sprintf("tcp:%d", l.home.TCPPorts.First)
	var r string
	// The chart's values come from samples (every 100 ms here): wait for
	// the one after the transfer.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r = row(t, l.get(), tcp); !strings.Contains(r, "peak 0 B/s") {
			break
		}
	}
	var missing []string
	out := fmt.Sprintf("%d B out", len(fmt.Sprintf("got %d\n", sent)))
	for _, want := range []string{`data-entry-traffic=`, "2.5 MB in", out, "<svg", `class="line in"`, `class="line out"`} {
		if !strings.Contains(r, want) {
			missing = append(missing, want)
		}
	}
	if missing != nil {
		t.Errorf("the tcp forward's row lacks %q:\n%s", missing, r)
	}
	if strings.Contains(r, "peak 0 B/s") {
		t.Errorf("the chart of the last hour shows no traffic after %d bytes:\n%s", sent, r)
	}
	if w := row(t, l.get(), "http://web.example.com"); !strings.Contains(w, "0 B in") || !strings.Contains(w, "<svg") {
		t.Errorf("the http forward's row should show its own (no) traffic and a chart:\n%s", w)
	}
}

// TestForwardsFitTheirCardInChromium renders the dashboard at a desktop and
// a phone width with several forwards, one of them with a 300-character
// error: every button stays inside its card, the long error takes one line
// until clicked, then shows in full. The add form offers private forwards
// with a name, adds one, and keeps the chosen scheme when the cloud refuses
// an add. Screenshots of both widths are written as artifacts.
func TestForwardsFitTheirCardInChromium(t *testing.T) {
	browser := startChromium(t)
	long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 50) + ".unowned.example.net"
	l := startLive(t, func(l *live) []store.Entry {
		return []store.Entry{
			{Scheme: "https", Host: "app.example.com", Mode: "passthrough", Target: l.sink},
			{Scheme: "http", Host: "a-rather-long-name-for-a-web-app.example.com", Target: l.web},
			{Scheme: "tcp", PublicPort: l.home.TCPPorts.First, Target: l.sink},
			{Scheme: "tcp", Private: true, Name: "gpu-ui", Target: l.sink},
			{Scheme: "https", Host: long, Mode: "passthrough", Target: l.sink}, // refused by the cloud: not a base domain of the home
		}
	})
	var longErr string
	for _, f := range l.a.Status().Forwards {
		if strings.Contains(f.Public, long) {
			longErr = f.Error
		}
	}
	if len(longErr) < 300 {
		t.Fatalf("the refused forward's error has %d characters, want a long one (300+): %q", len(longErr), longErr)
	}

	type layout struct {
		Outside              []string // buttons not inside their card
		Buttons              int
		Width                float64 // of the page's scrolling area
		Viewport             float64
		ErrLines, LineHeight float64
		ErrOpenLines         float64
		ErrOpen              bool
	}
	// measure reads every button's box and its card's (its section), and
	// the long error's height before and after a click on it.
	const measure = `(() => {
		const out = [];
		const bs = [...document.querySelectorAll('button')].filter(b => b.offsetParent !== null);
		for (const b of bs) {
			const r = b.getBoundingClientRect(), c = b.closest('section').getBoundingClientRect();
			if (r.left < c.left - 0.5 || r.right > c.right + 0.5 || r.top < c.top - 0.5 || r.bottom > c.bottom + 0.5)
				out.push(b.textContent.trim() + ' ' + JSON.stringify(r) + ' outside ' + JSON.stringify(c));
		}
		const err = [...document.querySelectorAll('[data-entry-error]')].find(e => e.textContent.length >= 300);
		if (!err) return {Outside: out, Buttons: bs.length, ErrLines: -1};
		const lh = parseFloat(getComputedStyle(err).lineHeight);
		const closed = err.getBoundingClientRect();
		err.click();
		const open = err.getBoundingClientRect();
		const d = err.closest('details');
		const res = {Outside: out, Buttons: bs.length, Width: document.documentElement.scrollWidth, Viewport: window.innerWidth,
			ErrLines: closed.height / lh, LineHeight: lh, ErrOpenLines: open.height / lh, ErrOpen: !!d && d.open};
		err.click();
		return res;
	})()`
	for _, width := range []int64{1280, 390} {
		run, cancel := context.WithTimeout(browser, 30*time.Second)
		err := chromedp.Do(run, chromedp.EmulateViewport(width, 900), chromedp.Navigate(l.url+"/"), chromedp.WaitVisible(`#entries`))
		var got layout
		if err == nil {
			got, err = chromedp.Run(run, chromedp.Evaluate[layout](measure))
		}
		shot := screenshot(t, run, fmt.Sprintf("console-forwards-%d.png", width))
		cancel()
		if err != nil {
			t.Fatalf("%d px: %v (screenshot %s)", width, err, shot)
		}
		t.Logf("%d px: %d buttons, screenshot %s", width, got.Buttons, shot)
		if got.Buttons < 15 {
			t.Errorf("%d px: only %d buttons visible; want the actions of 5 forwards and more", width, got.Buttons)
		}
		for i, o := range got.Outside {
			if i == 3 {
				t.Errorf("%d px: ... and %d more buttons outside their card", width, len(got.Outside)-i)
				break
			}
			t.Errorf("%d px: button outside its card: %s", width, o)
		}
		if got.Width > got.Viewport+0.5 {
			t.Errorf("%d px: the page scrolls sideways (%v px wide)", width, got.Width)
		}
		switch {
		case got.ErrLines < 0:
			t.Errorf("%d px: the 300-character error is not on the page", width)
		case got.ErrLines > 1.5:
			t.Errorf("%d px: the 300-character error takes %.1f lines, want one until asked", width, got.ErrLines)
		case !got.ErrOpen || got.ErrOpenLines < 2:
			t.Errorf("%d px: clicked, the error shows %.1f lines (details open: %v), want all of it", width, got.ErrOpenLines, got.ErrOpen)
		}
	}

	// The add form keeps the chosen scheme when the cloud refuses an add,
	// and offers private forwards, with a name.
	run, cancel := context.WithTimeout(browser, 40*time.Second)
	defer cancel()
	var scheme, portValue string
	err := chromedp.Do(run,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(l.url+"/"),
		chromedp.WaitVisible(`#add-entry`),
		// A public port far outside the home's range: refused by the cloud.
		chromedp.SetValue(`#add-entry select[name="scheme"]`, "tcp"),
		chromedp.SendKeys(`#add-entry input[name="public_port"]`, "1"),
		chromedp.SendKeys(`#add-entry input[name="target"]`, l.sink),
		chromedp.Click(`#add-entry button`),
		chromedp.WaitVisible(`#error`),
	)
	if err == nil {
		scheme, err = chromedp.Run(run, chromedp.Value(`#add-entry select[name="scheme"]`))
	}
	if err == nil {
		portValue, err = chromedp.Run(run, chromedp.Value(`#add-entry input[name="public_port"]`))
	}
	if err != nil {
		t.Fatalf("refused add: %v (screenshot %s)", err, screenshot(t, browser, "console-add-refused.png"))
	}
	if scheme != "tcp" || portValue != "1" {
		t.Errorf("after a refused add the form shows scheme %q, public port %q; want tcp and 1 as chosen (screenshot %s)", scheme, portValue, screenshot(t, browser, "console-add-refused.png"))
	}
	var options string
	err = chromedp.Do(run,
		chromedp.Navigate(l.url+"/"),
		chromedp.WaitVisible(`#add-entry`),
	)
	if err == nil {
		options, err = chromedp.Run(run, chromedp.Evaluate[string](`[...document.querySelectorAll('#add-entry select[name="scheme"] option')].map(o => o.value).join(' ') + (document.querySelector('#add-entry input[name="name"]') ? ' +name' : '')`))
	}
	if err == nil && options != "https http tcp private +name" {
		t.Fatalf("the add form offers %q, want the schemes https http tcp private and a name field (+name)", options)
	}
	if err == nil {
		err = chromedp.Do(run,
			chromedp.SetValue(`#add-entry select[name="scheme"]`, "private"),
			chromedp.SendKeys(`#add-entry input[name="name"]`, "notes"),
			chromedp.SendKeys(`#add-entry input[name="target"]`, l.sink),
			chromedp.Click(`#add-entry button`),
			chromedp.WaitVisible(`.notice`),
		)
	}
	var page string
	if err == nil {
		page, err = chromedp.Run(run, chromedp.Text(`#entries`))
	}
	if err != nil {
		t.Fatalf("adding a private forward: %v (screenshot %s)", err, screenshot(t, browser, "console-add-private.png"))
	}
	if !strings.Contains(page, "private:notes") {
		t.Errorf("after adding a private forward named notes, the forwards are:\n%s", page)
	}
}
