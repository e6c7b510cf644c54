package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/haproxy"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// api calls the cloud's REST API and decodes the answer into out.
func api(t testing.TB, c *cloudtest.Cloud, token, method, path string, body any, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.APIURL+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// seen is what a tunnel-port server learned from one connection.
type seen struct {
	source string // client address from the PROXY v2 header
	line   string // first request line or data line
	xff    string
}

// tunnelServer stands in for a home on a tunnel port: it requires a PROXY v2
// header (but for HTTP, which comes without one: --reuse-home-connections),
// then answers plain TCP, HTTP or TLS, reporting what it saw.
func tunnelServer(t *testing.T, port int, mode string) <-chan seen {
	t.Helper()
	out := make(chan seen, 16)
	cert := selfSigned(t)
	serveTunnelPort(t, port, func(conn net.Conn) {
		br := bufio.NewReader(conn)
		hdr, err := proxyproto.Read(br)
		if err != nil && !(mode == "http" && errors.Is(err, proxyproto.ErrNoProxyProtocol)) {
			return // no PROXY header: refuse
		}
		var s seen
		if hdr != nil {
			s.source = hdr.SourceAddr.String()
		}
		var rw io.ReadWriter = struct {
			io.Reader
			io.Writer
		}{br, conn}
		if mode == "tls" {
			if rw, br = serveTLS(conn, br, cert); rw == nil {
				return
			}
		}
		line, _ := br.ReadString('\n')
		s.line = strings.TrimSpace(line)
		if mode == "http" {
			req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(line), br)))
			if err == nil {
				s.xff = req.Header.Get("X-Forwarded-For")
			}
			fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
		} else {
			fmt.Fprintf(rw, "hello %s\n", s.line)
		}
		out <- s
	})
	return out
}

// serveTunnelPort listens on the tunnel port until the test ends and runs
// handle on each connection in a goroutine of its own, closing the
// connection after.
func serveTunnelPort(t testing.TB, port int, handle func(net.Conn)) {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				handle(conn)
			}()
		}
	}()
}

// serveTLS completes a TLS handshake with cert on conn, whose bytes so far
// br has buffered, and returns the decrypted stream and a reader of it;
// nil when the handshake fails.
func serveTLS(conn net.Conn, br *bufio.Reader, cert tls.Certificate) (io.ReadWriter, *bufio.Reader) {
	tc := tls.Server(&bufConn{Conn: conn, r: br}, &tls.Config{Certificates: []tls.Certificate{cert}})
	if tc.Handshake() != nil {
		return nil, nil
	}
	return tc, bufio.NewReader(tc)
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"app.example.com"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func tlsGet(addr, sni string) (string, error) {
	d := &net.Dialer{Timeout: 2 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintln(c, "ping")
	return bufio.NewReader(c).ReadString('\n')
}

func tcpGet(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintln(c, "ping")
	return bufio.NewReader(c).ReadString('\n')
}

func httpGet(addr, host string) (int, string, error) {
	req, _ := http.NewRequest("GET", "http://"+addr+"/path?q=1", nil)
	req.Host = host
	client := &http.Client{Timeout: 3 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if loc := resp.Header.Get("Location"); loc != "" {
		return resp.StatusCode, loc, nil
	}
	return resp.StatusCode, string(b), nil
}

// setup gives a home with a base domain and https, http and tcp mappings.
type routed struct {
	c                        *cloudtest.Cloud
	token                    string
	home                     cloudtest.Home
	https, http, tcp, secure proto.Mapping
}

func setup(t *testing.T, c *cloudtest.Cloud) routed {
	t.Helper()
	h := c.NewHome(t, "alice")
	tok := c.Token(t, h.User)
	r := routed{c: c, token: tok, home: h}
	base := "/api/v1/homes/" + h.Slug
	must := func(status int) {
		t.Helper()
		if status != 201 {
			t.Fatalf("API answered %d", status)
		}
	}
	must(api(t, c, tok, "POST", base+"/base-domains", proto.BaseDomainRequest{Domain: "example.com"}, nil))
	must(api(t, c, tok, "POST", base+"/mappings", proto.MappingRequest{Scheme: "https", Host: "app.example.com"}, &r.https))
	must(api(t, c, tok, "POST", base+"/mappings", proto.MappingRequest{Scheme: "http", Host: "web.example.com"}, &r.http))
	must(api(t, c, tok, "POST", base+"/mappings", proto.MappingRequest{Scheme: "tcp", PublicPort: h.TCP.First}, &r.tcp))
	must(api(t, c, tok, "POST", base+"/mappings", proto.MappingRequest{Scheme: "https", Host: "secure.example.com"}, &r.secure))
	return r
}

func TestRoutesReachTheTunnelPortsWithTheClientAddress(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true})
	r := setup(t, c)
	httpsSeen := tunnelServer(t, r.https.TunnelPort, "tls")
	httpSeen := tunnelServer(t, r.http.TunnelPort, "http")
	tcpSeen := tunnelServer(t, r.tcp.TunnelPort, "tcp")

	// The route is live when the API call returns: no waiting.
	if got, err := tlsGet(c.HTTPSAddr, "app.example.com"); err != nil || got != "hello ping\n" {
		t.Fatalf("https via SNI: %q %v", got, err)
	}
	if s := <-httpsSeen; !strings.HasPrefix(s.source, "127.0.0.1:") {
		t.Errorf("https: PROXY source = %q, want the client's address", s.source)
	}
	status, body, err := httpGet(c.HTTPAddr, "web.example.com")
	if err != nil || status != 200 || body != "hello" {
		t.Fatalf("http via Host: %d %q %v", status, body, err)
	}
	if s := <-httpSeen; s.source != "" || s.xff != "127.0.0.1" || !strings.HasPrefix(s.line, "GET /path?q=1") {
		t.Errorf("http: saw %+v, want no PROXY header (--reuse-home-connections), X-Forwarded-For and the request", s)
	}
	tcpAddr := fmt.Sprintf("127.0.0.1:%d", r.tcp.PublicPort)
	if got, err := tcpGet(tcpAddr); err != nil || got != "hello ping\n" {
		t.Fatalf("tcp via port: %q %v", got, err)
	}
	if s := <-tcpSeen; !strings.HasPrefix(s.source, "127.0.0.1:") {
		t.Errorf("tcp: PROXY source = %q", s.source)
	}
	// A host with only an https mapping is redirected on port 80, to the
	// public HTTPS port (not 443 here).
	_, httpsPort, _ := net.SplitHostPort(c.HTTPSAddr)
	if status, loc, err := httpGet(c.HTTPAddr, "secure.example.com"); err != nil || status/100 != 3 || loc != "https://secure.example.com:"+httpsPort+"/path?q=1" {
		t.Errorf("https-only host on 80: %d %q %v", status, loc, err)
	}
	// Unknown names and ports are refused cleanly.
	if _, err := tlsGet(c.HTTPSAddr, "unknown.example.com"); err == nil {
		t.Errorf("unknown SNI was routed")
	}
	if status, _, err := httpGet(c.HTTPAddr, "unknown.example.com"); err != nil || status != 503 {
		t.Errorf("unknown Host: %d %v, want 503", status, err)
	}
	if _, err := tcpGet(fmt.Sprintf("127.0.0.1:%d", r.home.TCP.Last)); err == nil {
		t.Errorf("an unmapped public TCP port was routed")
	}
	// Deleting a mapping closes its route for the next connection.
	if st := api(t, c, r.token, "DELETE", fmt.Sprintf("/api/v1/homes/%s/mappings/%d", r.home.Slug, r.https.ID), nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if _, err := tlsGet(c.HTTPSAddr, "app.example.com"); err == nil {
		t.Errorf("a deleted https mapping still routes")
	}
}

func TestInjectionNeverReachesHAProxy(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true})
	r := setup(t, c)
	before := showMaps(t, c)
	for _, host := range []string{"x;clear map", "a b.example.com", "a\nclear map https", "x.example.com;clear map /", "#.example.com", "x.example.com\r\nshow info"} {
		if st := api(t, c, r.token, "POST", "/api/v1/homes/"+r.home.Slug+"/mappings", proto.MappingRequest{Scheme: "https", Host: host}, nil); st != 400 {
			t.Errorf("host %q: status %d, want 400", host, st)
		}
	}
	if after := showMaps(t, c); after != before {
		t.Errorf("maps changed:\nbefore %s\nafter %s", before, after)
	}
	if !strings.Contains(before, "app.example.com") {
		t.Errorf("maps lack the real routes: %s", before)
	}
}

func showMaps(t *testing.T, c *cloudtest.Cloud) string {
	t.Helper()
	cl := &haproxy.Client{SocketPath: c.App.Config.HAProxySocketPath()}
	var b strings.Builder
	for _, m := range haproxy.Maps() {
		es, err := cl.ShowMap(context.Background(), haproxy.MapPath(c.App.Config.HAProxyMapDir(), m))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %v\n", m, es)
	}
	return b.String()
}

func TestRoutesSurviveKill9RestartAndDrift(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true, Args: []string{"--reconcile-interval", "1s"}})
	r := setup(t, c)
	tunnelServer(t, r.tcp.TunnelPort, "tcp")
	tcpAddr := fmt.Sprintf("127.0.0.1:%d", r.tcp.PublicPort)
	works := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := tcpGet(tcpAddr)
			if err == nil && got == "hello ping\n" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: route not back within 10s: %q %v", what, got, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	works("start")

	// kill -9 the whole HAProxy: the cloud restarts it, routes come back with no API call.
	before := c.App.HAProxy.Restarts()
	if err := syscall.Kill(c.App.HAProxy.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.App.HAProxy.Restarts() <= before || !c.App.HAProxy.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("haproxy not restarted within 10s (state %v)", c.App.HAProxy.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
	works("after kill -9")

	// Edit a map behind the cloud's back with socat: the reconciler repairs
	// it. The periodic pass may repair it before this test can look, so the
	// proof is the repair counter, not a failed request in between.
	repaired := repairs(t, c)
	mapFile := haproxy.MapPath(c.App.Config.HAProxyMapDir(), haproxy.MapTCP)
	cmd := fmt.Sprintf("del map %s %d\n", mapFile, r.tcp.PublicPort)
	if out, err := socat(c.App.Config.HAProxySocketPath(), cmd); err != nil {
		t.Fatalf("socat: %v %s", err, out)
	}
	works("after drift")
	for deadline := time.Now().Add(10 * time.Second); repairs(t, c) <= repaired; {
		if time.Now().After(deadline) {
			t.Fatalf("homeport_haproxy_repairs_total stayed at %v after del map", repaired)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Restart the cloud itself: nothing is lost.
	c = c.Restart(t)
	works("after cloud restart")
	var rep proto.RoutesReport
	admin := c.Token(t, adminUser(t, c))
	if st := api(t, c, admin, "GET", "/api/v1/admin/routes", nil, &rep); st != 200 || !rep.InSync || len(rep.Routes) != 4 {
		t.Errorf("admin routes = %d %+v", st, rep)
	}
}

func socat(socket, cmd string) (string, error) {
	if _, err := exec.LookPath("socat"); err != nil {
		// Same bytes on the same socket, when socat is not installed.
		c, err := net.Dial("unix", socket)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.Write([]byte(cmd))
		b, err := io.ReadAll(c)
		return string(b), err
	}
	c := exec.Command("socat", "-", "UNIX-CONNECT:"+socket)
	c.Stdin = strings.NewReader(cmd)
	b, err := c.CombinedOutput()
	return string(b), err
}

func adminUser(t *testing.T, c *cloudtest.Cloud) store.User {
	t.Helper()
	u, err := c.App.Accounts.Create(context.Background(), account.NewUser{Username: "root", Email: "root@example.com", Password: "root-password", Admin: true, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUnreachableHAProxyIsDegradedButTheAPIStillAccepts(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{Args: []string{"--haproxy", "external", "--haproxy-socket", t.TempDir() + "/nothing.sock"}})
	resp, err := http.Get(c.APIURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var h proto.Health
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 503 || h.Status != "degraded" || h.Checks["haproxy"] == "ok" {
		t.Errorf("readyz = %d %+v, want 503 degraded naming haproxy", resp.StatusCode, h)
	}
	h2 := c.NewHome(t, "alice")
	tok := c.Token(t, h2.User)
	if st := api(t, c, tok, "POST", "/api/v1/homes/"+h2.Slug+"/mappings", proto.MappingRequest{Scheme: "tcp", PublicPort: h2.TCP.First}, nil); st != 201 {
		t.Errorf("mapping while HAProxy is down: %d, want 201", st)
	}
	// The map file already holds it, for when HAProxy comes back.
	es, err := haproxy.ReadMap(c.App.Config.HAProxyMapDir(), haproxy.MapTCP)
	if err != nil || len(es) != 1 || es[0].Key != fmt.Sprint(h2.TCP.First) {
		t.Errorf("tcp.map = %v %v", es, err)
	}
}

// repairs reads homeport_haproxy_repairs_total from the cloud's /metrics.
func repairs(t *testing.T, c *cloudtest.Cloud) float64 {
	t.Helper()
	resp, err := http.Get(c.APIURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "homeport_haproxy_repairs_total "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no homeport_haproxy_repairs_total in /metrics")
	return 0
}
