package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/proto"
)

// TestStatusTellsWhatVisitorsGet breaks each layer between a visitor and a
// local service and reads `home status` (JSON and table) beside what the
// visitor gets: the cloud's mapping deleted in the web UI (503), the local
// service stopped (502), the cloud killed. Each restored, the forward is up
// again with no error left behind. Without a console, status probes the
// local services itself.
func TestStatusTellsWhatVisitorsGet(t *testing.T) {
	e := newStatusHome(t)
	c, u, profile, svc, tcpPort, slug, alice := e.c, e.u, e.profile, e.svc, e.tcpPort, e.slug, e.alice

	// No console: the local services are probed all the same.
	st := u.status(profile)
	if f := forwardOf(t, st, "http://web.example.com"); !f.LocalUp || f.Up || f.State != control.ForwardNotBound || !strings.Contains(f.Error, "no console") {
		t.Errorf("without a console: %+v, want the local service listening and the forward down for want of a tunnel", f)
	}
	if out := u.must("--config", profile, "status"); !matches(`http://web\.example\.com\s+\S+\s+down\s+up\s`, out) {
		t.Errorf("the table without a console does not show LOCAL up:\n%s", out)
	}

	dashboard, _ := u.console(profile)
	u.waitUp(profile, 2)
	if got, code := visitCode(t, c, "web.example.com"); code != 200 || !strings.HasPrefix(got, "web") {
		t.Fatalf("visitor before any fault: %d %q", code, got)
	}

	// 1. The mapping deleted in the cloud's web UI (the API does the same).
	var ms []proto.Mapping
	c.Do(t, alice.Token, "GET", "/api/v1/homes/"+slug+"/mappings", nil, &ms)
	for _, m := range ms {
		if m.Host == "web.example.com" {
			if code := c.Do(t, alice.Token, "DELETE", fmt.Sprintf("/api/v1/homes/%s/mappings/%d", slug, m.ID), nil, nil); code != http.StatusNoContent && code != http.StatusOK {
				t.Fatalf("deleting the mapping: %d", code)
			}
		}
	}
	waitVisitor(t, c, "web.example.com", 503)
	f := waitForward(t, u, profile, "http://web.example.com", control.ForwardNoMapping)
	if f.Up || f.CloudMapping || !strings.Contains(f.Error, "the cloud has no mapping for it (deleted in the web UI?): run home sync-tunnels") || f.Since.IsZero() {
		t.Errorf("after the mapping was deleted: %+v", f)
	}
	if out := u.must("--config", profile, "status"); !matches(`http://web\.example\.com\s+\S+\s+down\s+up\s+.*the cloud has no mapping for it`, out) {
		t.Errorf("the table does not say the mapping is gone:\n%s", out)
	}
	// The console's dashboard says the same.
	if page := dashboardPage(t, dashboard); !strings.Contains(page, "the cloud has no mapping for it (deleted in the web UI?)") {
		t.Errorf("the dashboard does not say the mapping is gone:\n%s", page)
	}
	// The tcp forward is not concerned.
	if f := forwardOf(t, u.status(profile), "tcp:"+strconv.Itoa(tcpPort)); !f.Up {
		t.Errorf("the tcp forward after another's mapping was deleted: %+v", f)
	}
	u.must("--config", profile, "sync-tunnels")
	u.waitUp(profile, 2)
	waitVisitor(t, c, "web.example.com", 200)
	if f := forwardOf(t, u.status(profile), "http://web.example.com"); f.Error != "" || f.State != control.ForwardUp || !f.CloudMapping || !f.Bound {
		t.Errorf("mapped again: %+v, want up with no error", f)
	}

	// 2. The local service stopped.
	svc.stop()
	waitVisitor(t, c, "web.example.com", 502)
	f = waitForward(t, u, profile, "http://web.example.com", control.ForwardLocalDown)
	if f.Up || f.LocalUp || f.Error != "nothing answers on "+svc.addr+" (visitors get 502 Bad Gateway)" || f.Since.IsZero() {
		t.Errorf("with the local service stopped: %+v", f)
	}
	if page := dashboardPage(t, dashboard); !strings.Contains(page, "nothing answers on "+svc.addr) {
		t.Errorf("the dashboard does not say the local service is down:\n%s", page)
	}
	svc.start()
	waitVisitor(t, c, "web.example.com", 200)
	if f := waitForward(t, u, profile, "http://web.example.com", control.ForwardUp); f.Error != "" || !f.LocalUp {
		t.Errorf("the local service back: %+v", f)
	}

	// 3. The cloud killed: the tunnel is not connected, nothing is up.
	c.Kill(t)
	f = waitForward(t, u, profile, "http://web.example.com", control.ForwardNotBound)
	st = u.status(profile)
	if st.Tunnel.State == "connected" || st.Tunnel.LastError == "" || st.Tunnel.ErrorSince.IsZero() || f.Up || !strings.Contains(f.Error, "the tunnel is not connected") {
		t.Errorf("with the cloud down: tunnel %+v, forward %+v", st.Tunnel, f)
	}
	if g := forwardOf(t, st, "tcp:"+strconv.Itoa(tcpPort)); g.Up {
		t.Errorf("the tcp forward is up with the cloud down: %+v", g)
	}
	c.Restart(t)
	u.waitTunnel(profile, "connected")
	st = u.waitUp(profile, 2)
	if st.Tunnel.LastError != "" || st.MappingsError != "" {
		t.Errorf("connected again, but an error from the outage is still shown: tunnel %+v, mappings %q", st.Tunnel, st.MappingsError)
	}
	if out := u.must("--config", profile, "status"); !strings.Contains(out, "tunnel: connected since") || strings.Contains(out, "connection lost") || strings.Contains(out, "cannot connect") {
		t.Errorf("home status after the outage:\n%s", out)
	}
	waitVisitor(t, c, "web.example.com", 200)

}

// statusHome is a home with an http forward to a local service the test
// can stop and a tcp forward to an echo service, its console not started.
type statusHome struct {
	c       *hometest.Cloud
	alice   *hometest.User
	u       *user
	profile string
	slug    string
	svc     *service
	tcpPort int
}

func newStatusHome(t *testing.T) *statusHome {
	t.Helper()
	e := &statusHome{c: hometest.Start(t, hometest.Options{}), u: newUser(t)}
	e.alice = e.c.CreateUser(t, "alice")
	e.profile = register(e.u, e.c, e.alice.Token, filepath.Join(t.TempDir(), "p"))
	p, err := config.Load(e.profile)
	if err != nil {
		t.Fatal(err)
	}
	e.slug = p.Cloud.Home
	var h proto.Home
	e.c.Do(t, e.alice.Token, "GET", "/api/v1/homes/"+e.slug, nil, &h)
	e.u.must("--config", e.profile, "domains", "add", "example.com")
	e.svc = startService(t, "web")
	e.u.must("--config", e.profile, "expose", "http", "web.example.com", "--to", e.svc.addr)
	e.tcpPort = h.TCPPorts.First
	e.u.must("--config", e.profile, "expose", "tcp", strconv.Itoa(e.tcpPort), "--to", echoService(t))
	return e
}

// TestDisconnectByDomainKeepsTheRest: `sync-tunnels --domain X
// --disconnect` unmaps X's forwards only: the tunnel stays connected and a
// tcp forward outside X keeps serving (the whole tunnel used to close),
// a reload of the console does not map X again, sync-tunnels does; a
// --domain that matches nothing fails, listing the names there are (it
// used to say "in sync").
func TestDisconnectByDomainKeepsTheRest(t *testing.T) {
	e := newStatusHome(t)
	c, u, profile, tcpPort := e.c, e.u, e.profile, e.tcpPort
	u.console(profile)
	u.waitUp(profile, 2)
	if out := u.fails("matches no forward", "--config", profile, "sync-tunnels", "--domain", "nomatch.org", "--disconnect"); !strings.Contains(out, "web.example.com") {
		t.Errorf("the refusal of --domain nomatch.org does not list the names there are:\n%s", out)
	}
	u.must("--config", profile, "sync-tunnels", "--domain", "example.com", "--disconnect")
	waitVisitor(t, c, "web.example.com", 503)
	if got, err := echo(c, tcpPort); err != nil || got != "ping\n" {
		t.Errorf("the tcp forward outside example.com after --disconnect: %q %v", got, err)
	}
	st := u.status(profile)
	if st.Tunnel.State != "connected" {
		t.Errorf("--domain example.com --disconnect closed the tunnel: %+v", st.Tunnel)
	}
	if f := forwardOf(t, st, "http://web.example.com"); f.Up || !strings.Contains(f.Error, "disconnected") {
		t.Errorf("the disconnected forward: %+v", f)
	}
	// The console's next reload leaves it disconnected.
	u.must("--config", profile, "reload")
	if f := forwardOf(t, u.status(profile), "http://web.example.com"); f.Up {
		t.Errorf("a reload mapped the disconnected forward again: %+v", f)
	}
	u.must("--config", profile, "sync-tunnels")
	u.waitUp(profile, 2)
	waitVisitor(t, c, "web.example.com", 200)
}

// service is a local HTTP service that can be stopped and started again on
// the same address.
type service struct {
	t    *testing.T
	name string
	addr string
	srv  *http.Server
}

func startService(t *testing.T, name string) *service {
	s := &service{t: t, name: name, addr: "127.0.0.1:" + strconv.Itoa(hometest.FreePort(t))}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *service) start() {
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s", s.name)
	})}
	go s.srv.Serve(l)
}

func (s *service) stop() {
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// echoService is a local TCP service that echoes lines.
func echoService(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

// echo sends a line to the cloud's public tcp port and reads it back.
func echo(c *hometest.Cloud, port int) (string, error) {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "ping\n")
	return bufio.NewReader(conn).ReadString('\n')
}

// visitCode requests host through the cloud's public HTTP port and
// returns the body and status code (0 when no answer came).
func visitCode(t *testing.T, c *hometest.Cloud, host string) (string, int) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+c.HTTPAddr+"/", nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err.Error(), 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// waitVisitor waits (bounded) until a visitor of host gets code.
func waitVisitor(t *testing.T, c *hometest.Cloud, host string, code int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		body, got := visitCode(t, c, host)
		if got == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a visitor of %s gets %d %q, want %d", host, got, body, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForward waits (bounded) until `home status` shows the forward of
// public in state.
func waitForward(t *testing.T, u *user, profile, public, state string) control.ForwardStatus {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		f := forwardOf(t, u.status(profile), public)
		if f.State == state {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not %s within 15 s: %+v", public, state, f)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func forwardOf(t *testing.T, st control.Status, public string) control.ForwardStatus {
	t.Helper()
	for _, f := range st.Forwards {
		if f.Public == public {
			return f
		}
	}
	b, _ := json.Marshal(st)
	t.Fatalf("no forward %s in the status: %s", public, b)
	return control.ForwardStatus{}
}

// dashboardPage is the console's dashboard as a browser gets it.
func dashboardPage(t *testing.T, addr string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("the dashboard: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func matches(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
