package serve_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/proto"
)

// TestTwoEdgesOnOnePostgreSQL: two `cloud serve --edge a|b` nodes on one
// PostgreSQL, each with its own HAProxy and SSH endpoint. Claims spread
// over the edges; each home's API answer names its edge's SSH endpoint and
// host key; each home serves visitors through its own edge only, and a
// home dialing the wrong edge is told which is right. A mapping created on
// A's API reaches B's HAProxy by NOTIFY (the periodic reconcile is an hour
// away). An admin moves a home from B to A: B drops it, it reconnects to A
// and serves there. B stops: A keeps serving, its API answers, and
// /admin/edges shows B down.
func TestTwoEdgesOnOnePostgreSQL(t *testing.T) {
	dsn := pg.DB(t)
	a := cloudtest.Start(t, cloudtest.Options{HAProxy: true, Args: []string{"--db", dsn, "--edge", "a", "--reconcile-interval", "1h"}})
	base := fmt.Sprint(a.App.Config.Layout.TunnelBase) // one slot layout for the whole cloud
	b := cloudtest.Start(t, cloudtest.Options{HAProxy: true, Args: []string{"--db", dsn, "--edge", "b", "--reconcile-interval", "1h", "--tunnel-port-base", base}})

	h1 := a.NewHome(t, "alice") // least-loaded: a (by name), then b
	h2 := a.NewHome(t, "alice")
	tok := a.Token(t, h1.User)
	admin := a.Token(t, adminUser(t, a))
	var p1, p2 proto.Home
	api(t, a, tok, "GET", "/api/v1/homes/"+h1.Slug, nil, &p1)
	api(t, a, tok, "GET", "/api/v1/homes/"+h2.Slug, nil, &p2)
	if p1.Edge != "a" || p2.Edge != "b" {
		t.Fatalf("claims went to edges %q and %q, want a and b (least loaded)", p1.Edge, p2.Edge)
	}
	if sshAddr(p1.SSH) != a.SSHAddr || p1.SSH.HostKey != a.HostKey || sshAddr(p2.SSH) != b.SSHAddr || p2.SSH.HostKey != b.HostKey {
		t.Fatalf("API answers SSH %s and %s, want edge a's %s and edge b's %s with their host keys", sshAddr(p1.SSH), sshAddr(p2.SSH), a.SSHAddr, b.SSHAddr)
	}

	// Each home connects to its own edge and serves through it.
	mustStatus(t, 201, api(t, a, tok, "POST", "/api/v1/homes/"+h1.Slug+"/base-domains", proto.BaseDomainRequest{Domain: "example.com"}, nil))
	mustStatus(t, 201, api(t, a, tok, "POST", "/api/v1/homes/"+h2.Slug+"/base-domains", proto.BaseDomainRequest{Domain: "example.org"}, nil))
	var m1 proto.Mapping
	mustStatus(t, 201, api(t, a, tok, "POST", "/api/v1/homes/"+h1.Slug+"/mappings", proto.MappingRequest{Scheme: "http", Host: "web.example.com"}, &m1))
	c1 := dialEdge(t, a, h1, p1.SSH)
	cloudtest.Forward(t, c1, m1.TunnelPort, hello(h1.Slug))
	visit(t, a, "web.example.com", h1.Slug)
	if st, _, err := httpGet(b.HTTPAddr, "web.example.com"); err != nil || st != 503 {
		t.Errorf("edge b routes a home of edge a: %d %v, want 503", st, err)
	}

	// A route change made on A's API reaches B's HAProxy through NOTIFY.
	c2 := dialEdge(t, b, h2, p2.SSH)
	cloudtest.Forward(t, c2, h2.Tunnel.First, hello(h2.Slug)) // the first mapping gets the first tunnel port
	var m2 proto.Mapping
	mustStatus(t, 201, api(t, a, tok, "POST", "/api/v1/homes/"+h2.Slug+"/mappings", proto.MappingRequest{Scheme: "http", Host: "web.example.org"}, &m2))
	created := time.Now()
	if m2.TunnelPort != h2.Tunnel.First {
		t.Fatalf("mapping got tunnel port %d, want %d", m2.TunnelPort, h2.Tunnel.First)
	}
	var reached time.Duration
	for i := 0; ; i++ {
		if st, body, err := httpGet(b.HTTPAddr, "web.example.org"); err == nil && st == 200 && body == "hello from "+h2.Slug {
			reached = time.Since(created)
			break
		}
		if i == 1000 {
			t.Fatalf("a mapping created on edge a's API never reached edge b's HAProxy (reconcile interval 1h: only NOTIFY can bring it)")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("route change on edge a's API served by edge b's HAProxy after %v (NOTIFY, reconcile, runtime API, visitor)", reached)
	if st, _, err := httpGet(a.HTTPAddr, "web.example.org"); err != nil || st != 503 {
		t.Errorf("edge a routes a home of edge b: %d %v, want 503", st, err)
	}

	// The wrong edge refuses a home and names the right one.
	banner, err := dialWithBanner(b, h1)
	if err == nil || !strings.Contains(banner, "edge a") || !strings.Contains(banner, a.SSHAddr) {
		t.Errorf("home of edge a at edge b: err %v, banner %q; want a refusal naming edge a at %s", err, banner, a.SSHAddr)
	}

	// An admin moves h2 to a: b drops its connection and route, the home
	// follows the API's answer to a and serves there.
	var moved proto.Home
	mustStatus(t, 200, api(t, a, admin, "POST", "/api/v1/admin/homes/"+h2.Slug+"/edge", proto.MoveHomeRequest{Edge: "a"}, &moved))
	if moved.Edge != "a" || sshAddr(moved.SSH) != a.SSHAddr || moved.SSH.HostKey != a.HostKey {
		t.Fatalf("moved home's API answer: edge %q SSH %s, want edge a at %s", moved.Edge, sshAddr(moved.SSH), a.SSHAddr)
	}
	waitClosed(t, c2, "edge b keeps the connection of a home moved to edge a")
	c2 = dialEdge(t, a, h2, moved.SSH)
	cloudtest.Forward(t, c2, m2.TunnelPort, hello(h2.Slug))
	visit(t, a, "web.example.org", h2.Slug)
	if st, _, err := httpGet(b.HTTPAddr, "web.example.org"); err != nil || st != 503 {
		t.Errorf("edge b still routes a home moved away: %d %v, want 503", st, err)
	}
	if st := api(t, a, admin, "POST", "/api/v1/admin/homes/"+h2.Slug+"/edge", proto.MoveHomeRequest{Edge: "zz"}, nil); st != 400 {
		t.Errorf("move to an unknown edge: %d, want 400", st)
	}

	// B goes away: A serves its homes, its API answers, B is shown down.
	b.Stop()
	visit(t, a, "web.example.com", h1.Slug)
	visit(t, a, "web.example.org", h2.Slug)
	var list []proto.Edge
	mustStatus(t, 200, api(t, a, admin, "GET", "/api/v1/admin/edges", nil, &list))
	if len(list) != 2 || list[0].Name != "a" || !list[0].Up || list[0].Homes != 2 || list[1].Name != "b" || list[1].Up {
		t.Fatalf("admin edges after b stopped: %+v, want a up with 2 homes, b down", list)
	}
	// The load is the connected homes at the last heartbeat (every 2 s).
	for i := 0; list[0].Load != 2; i++ {
		if i == 100 {
			t.Fatalf("edge a's load stays %d, want its 2 connected homes", list[0].Load)
		}
		time.Sleep(50 * time.Millisecond)
		mustStatus(t, 200, api(t, a, admin, "GET", "/api/v1/admin/edges", nil, &list))
	}
}

func sshAddr(ep proto.SSHEndpoint) string { return net.JoinHostPort(ep.Host, fmt.Sprint(ep.Port)) }

func mustStatus(t *testing.T, want, got int) {
	t.Helper()
	if got != want {
		t.Fatalf("API answered %d, want %d", got, want)
	}
}

// dialEdge logs h in at the endpoint the API gave it, pinning the host key
// the API gave.
func dialEdge(t *testing.T, c *cloudtest.Cloud, h cloudtest.Home, ep proto.SSHEndpoint) *ssh.Client {
	t.Helper()
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(ep.HostKey))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ssh.Dial("tcp", sshAddr(ep), &ssh.ClientConfig{User: h.Slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(h.Signer)},
		HostKeyCallback: ssh.FixedHostKey(key), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("home %s at %s: %v", h.Slug, sshAddr(ep), err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// dialWithBanner logs h in at c and returns what the server said in a banner.
func dialWithBanner(c *cloudtest.Cloud, h cloudtest.Home) (string, error) {
	var banner string
	cl, err := ssh.Dial("tcp", c.SSHAddr, &ssh.ClientConfig{User: h.Slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(h.Signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second,
		BannerCallback: func(m string) error { banner += m; return nil }})
	if err == nil {
		cl.Close()
	}
	return banner, err
}

func waitClosed(t *testing.T, cl *ssh.Client, what string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cl.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

// hello answers an HTTP visitor that came through HAProxy (PROXY v2 header)
// with "hello from NAME".
func hello(name string) func(net.Conn) {
	return func(conn net.Conn) {
		defer conn.Close()
		br := bufio.NewReader(conn)
		// HTTP comes without a PROXY header (--reuse-home-connections).
		if _, err := proxyproto.Read(br); err != nil && !errors.Is(err, proxyproto.ErrNoProxyProtocol) {
			return
		}
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		body := "hello from " + name
		fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	}
}

// visit asks c's HAProxy for host and wants the named home's answer.
func visit(t *testing.T, c *cloudtest.Cloud, host, home string) {
	t.Helper()
	st, body, err := httpGet(c.HTTPAddr, host)
	if err != nil || st != 200 || body != "hello from "+home {
		t.Fatalf("visitor of %s through %s: %d %q %v, want home %s's answer", host, c.HTTPAddr, st, body, err, home)
	}
}

// TestKilledEdgeIsMarkedDown: edge b, a separate `cloud serve --edge b`
// process, is killed with SIGKILL. Edge a keeps serving its home and its
// API answers at once; within a few heartbeats /admin/edges shows b down,
// and a new home goes to a although b has fewer homes.
func TestKilledEdgeIsMarkedDown(t *testing.T) {
	dsn := pg.DB(t)
	a := cloudtest.Start(t, cloudtest.Options{HAProxy: true, Args: []string{"--db", dsn, "--edge", "a"}})
	l := a.App.Config.Layout
	tcp := cloudtest.FreePort(t)
	bAPI := fmt.Sprintf("127.0.0.1:%d", cloudtest.FreePort(t))
	b := exec.Command(cloudtest.Binary(t), "serve", "--db", dsn, "--edge", "b", "--data", t.TempDir(),
		"--api-addr", bAPI, "--ssh-addr", fmt.Sprintf("127.0.0.1:%d", cloudtest.FreePort(t)), "--public-host", "127.0.0.1",
		"--haproxy", "off", "--shape-dev", "off", "--metrics-addr", "off", "--log-level", "error",
		"--home-slots", fmt.Sprint(l.Slots), "--tunnel-port-base", fmt.Sprint(l.TunnelBase), "--tcp-ports", fmt.Sprintf("%d-%d", tcp, tcp+2*l.Slots-1), "--tcp-block", "2")
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			b.Process.Kill()
			b.Wait()
		}
	})
	admin := a.Token(t, adminUser(t, a))
	edgesNow := func() []proto.Edge {
		t.Helper()
		var list []proto.Edge
		mustStatus(t, 200, api(t, a, admin, "GET", "/api/v1/admin/edges", nil, &list))
		return list
	}
	for i := 0; ; i++ {
		if list := edgesNow(); len(list) == 2 && list[1].Up {
			break
		}
		if i == 300 {
			t.Fatalf("edge b never registered: %+v", edgesNow())
		}
		time.Sleep(50 * time.Millisecond)
	}

	h1 := a.NewHome(t, "alice") // both up, no homes: a
	if h1.Edge != "a" {
		t.Fatalf("first home on edge %q, want a", h1.Edge)
	}
	tok := a.Token(t, h1.User)
	var p1 proto.Home
	api(t, a, tok, "GET", "/api/v1/homes/"+h1.Slug, nil, &p1)
	mustStatus(t, 201, api(t, a, tok, "POST", "/api/v1/homes/"+h1.Slug+"/base-domains", proto.BaseDomainRequest{Domain: "example.com"}, nil))
	var m1 proto.Mapping
	mustStatus(t, 201, api(t, a, tok, "POST", "/api/v1/homes/"+h1.Slug+"/mappings", proto.MappingRequest{Scheme: "http", Host: "web.example.com"}, &m1))
	cloudtest.Forward(t, dialEdge(t, a, h1, p1.SSH), m1.TunnelPort, hello(h1.Slug))
	visit(t, a, "web.example.com", h1.Slug)

	if err := b.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.Wait()
	killed = true
	visit(t, a, "web.example.com", h1.Slug)
	start := time.Now()
	for i := 0; ; i++ {
		list := edgesNow() // the API answers throughout
		if len(list) == 2 && list[0].Up && !list[1].Up {
			t.Logf("killed edge b shown down after %v", time.Since(start).Round(100*time.Millisecond))
			break
		}
		if i == 400 {
			t.Fatalf("edge b still up 20 s after it was killed: %+v", list)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h2 := a.NewHome(t, "bob"); h2.Edge != "a" {
		t.Errorf("a home claimed while b is down went to edge %q, want a", h2.Edge)
	}
	visit(t, a, "web.example.com", h1.Slug)
}
