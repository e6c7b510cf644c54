package gateway_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"homeport.dev/proto/testnet"

	proxyproto "github.com/pires/go-proxyproto"

	"homeport.dev/home/internal/gateway"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto"
)

// clientIP is the internet client's address in these tests: another
// loopback address than the 127.0.0.1 every hop in between uses, so that a
// service seeing it learned it from the PROXY header.
const clientIP = "127.0.0.2"

func clientDialer() *net.Dialer {
	return &net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}}
}

// seenRequest is what the local HTTP service reports about a request.
type seenRequest struct {
	Host, Path, XFF, XFProto, XFHost string
}

// httpService is the home's local web app: it reports what it saw, streams
// on /stream and speaks a line-echo protocol after an Upgrade on /upgrade.
func httpService(t *testing.T, release <-chan struct{}) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(seenRequest{
			Host: r.Host, Path: r.URL.RequestURI(), XFF: strings.Join(r.Header.Values("X-Forwarded-For"), ","),
			XFProto: r.Header.Get("X-Forwarded-Proto"), XFHost: r.Header.Get("X-Forwarded-Host"),
		})
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "second\n")
	})
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "upgrade to echo", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			io.WriteString(c, "echo "+line)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// tlsService is a local TLS service answering each line with "tls " + line.
func tlsService(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	return testnet.Serve(t, ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil {
			io.WriteString(c, "tls "+line)
		}
	})
}

// proxyAwareService is a local TCP service that expects a PROXY v2 header
// and answers with the client address it names.
func proxyAwareService(t *testing.T) string {
	t.Helper()
	return testnet.Serve(t, testnet.Listen(t), func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		hdr, err := proxyproto.Read(br)
		if err != nil {
			io.WriteString(c, "no PROXY header: "+err.Error()+"\n")
			return
		}
		line, _ := br.ReadString('\n')
		fmt.Fprintf(c, "from %s to %s: %s", hdr.SourceAddr, hdr.DestinationAddr, line)
	})
}

func selfSigned(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestInternetClientReachesLocalServices runs the whole path: a client
// connects to the cloud's HAProxy (443 by SNI, 80 by Host, a public TCP
// port), the cloud forwards over the home's SSH connection, the supervisor
// hands the channel to the gateway, and the gateway serves the local
// service, which learns the real client address.
func TestInternetClientReachesLocalServices(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	h := c.ClaimHome(t, c.CreateUser(t, "alice"))
	h.AddBaseDomain(t, "example.com")
	passthrough := h.Map(t, proto.MappingRequest{Scheme: "https", Host: "app.example.com"})
	terminated := h.Map(t, proto.MappingRequest{Scheme: "https", Host: "secure.example.com"})
	web := h.Map(t, proto.MappingRequest{Scheme: "http", Host: "web.example.com"})
	raw := h.Map(t, proto.MappingRequest{Scheme: "tcp", PublicPort: h.TCPPorts.First})

	release := make(chan struct{})
	webApp := httpService(t, release)
	serviceCert, servicePool := selfSigned(t, "app.example.com")
	homeCert, homePool := selfSigned(t, "secure.example.com")

	g := newGateway(t, gateway.Options{Home: h.Slug})
	entries := map[int]gateway.Entry{
		passthrough.TunnelPort: {Kind: gateway.HTTPS, Target: tlsService(t, serviceCert)},
		terminated.TunnelPort:  {Kind: gateway.HTTPS, Target: webApp, TLS: &tls.Config{Certificates: []tls.Certificate{homeCert}}},
		web.TunnelPort:         {Kind: gateway.HTTP, Target: webApp},
		raw.TunnelPort:         {Kind: gateway.TCP, Target: proxyAwareService(t), SendProxy: true},
	}
	var forwards []tunnel.Forward
	for port, e := range entries {
		forwards = append(forwards, tunnel.Forward{TunnelPort: port, Handler: handler(t, g, e)})
	}
	runHome(t, h, forwards)

	t.Run("https passthrough by SNI", func(t *testing.T) {
		conn, err := tls.DialWithDialer(clientDialer(), "tcp", c.HTTPSAddr, &tls.Config{ServerName: "app.example.com", RootCAs: servicePool})
		if err != nil {
			t.Fatalf("TLS to the local service through the tunnel: %v", err)
		}
		defer conn.Close()
		// The certificate verified is the local service's own: TLS went
		// through untouched.
		if got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "app.example.com" {
			t.Errorf("certificate of %q", got)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "hello\n")
		if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "tls hello\n" {
			t.Errorf("%q %v", line, err)
		}
	})

	t.Run("http by Host with the client address", func(t *testing.T) {
		client := httpClient(c.HTTPAddr, nil)
		seen := getJSON(t, client, "http://web.example.com/some/path?q=1", "6.6.6.6")
		want := seenRequest{Host: "web.example.com", Path: "/some/path?q=1", XFF: clientIP, XFProto: "http", XFHost: "web.example.com"}
		if seen != want {
			t.Errorf("local service saw %+v\nwant %+v", seen, want)
		}
		// Keep-alive: a second request on the same client works too.
		if seen = getJSON(t, client, "http://web.example.com/again", ""); seen.Path != "/again" || seen.XFF != clientIP {
			t.Errorf("second request: %+v", seen)
		}
	})

	t.Run("https terminated with the home's certificate", func(t *testing.T) {
		client := httpClient(c.HTTPSAddr, &tls.Config{ServerName: "secure.example.com", RootCAs: homePool})
		seen := getJSON(t, client, "https://secure.example.com/private?x=y", "6.6.6.6")
		want := seenRequest{Host: "secure.example.com", Path: "/private?x=y", XFF: clientIP, XFProto: "https", XFHost: "secure.example.com"}
		if seen != want {
			t.Errorf("local service saw %+v\nwant %+v", seen, want)
		}
	})

	t.Run("http responses stream", func(t *testing.T) {
		client := httpClient(c.HTTPAddr, nil)
		resp, err := client.Get("http://web.example.com/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		if line, err := br.ReadString('\n'); err != nil || line != "first\n" {
			t.Fatalf("first chunk before the service finished: %q %v", line, err)
		}

		close(release)
		if rest, err := io.ReadAll(br); err != nil || string(rest) != "second\n" {
			t.Fatalf("rest: %q %v", rest, err)
		}
	})

	t.Run("http upgrade", func(t *testing.T) {
		conn, err := clientDialer().Dial("tcp", c.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "GET /upgrade HTTP/1.1\r\nHost: web.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade answer: %v %v", resp, err)
		}
		for _, msg := range []string{"one", "two"} {
			io.WriteString(conn, msg+"\n")
			if line, err := br.ReadString('\n'); err != nil || line != "echo "+msg+"\n" {
				t.Fatalf("after the upgrade: %q %v", line, err)
			}
		}
	})

	t.Run("tcp with the PROXY header passed on", func(t *testing.T) {
		public := fmt.Sprintf("127.0.0.1:%d", raw.PublicPort)
		conn, err := clientDialer().Dial("tcp", public)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "hi\n")
		line, err := bufio.NewReader(conn).ReadString('\n')
		// The destination is what HAProxy names after routing (the tunnel
		// port); the source is the internet client, port included.
		wantPrefix := fmt.Sprintf("from %s:%d to ", clientIP, conn.LocalAddr().(*net.TCPAddr).Port)
		if err != nil || !strings.HasPrefix(line, wantPrefix) || !strings.HasSuffix(line, ": hi\n") {
			t.Errorf("local service answered %q (%v), want %q...", line, err, wantPrefix)
		}
	})
}

// runHome runs h's tunnel with forwards until the test ends and returns
// once every forward is up.
func runHome(t *testing.T, h *hometest.Home, forwards []tunnel.Forward) {
	t.Helper()
	s, err := tunnel.New(tunnel.Config{Home: h.Slug, Addr: h.SSHAddr(), Signer: h.Signer, HostKey: h.HostKey, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	t.Cleanup(s.Stop)
	s.SetForwards(forwards)
	waitAllUp(t, s, len(forwards))
}

func waitAllUp(t *testing.T, s *tunnel.Supervisor, n int) {
	t.Helper()
	ch, cancel := s.Subscribe()
	defer cancel()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case st := <-ch:
			up := 0
			for _, f := range st.Forwards {
				if f.Up {
					up++
				}
			}
			if st.State == tunnel.StateConnected && up == n {
				return
			}
		case <-timeout:
			t.Fatalf("forwards not up within 10s: %+v", s.Status())
		}
	}
}

// httpClient sends every request to addr (the cloud's HAProxy) from the
// client address, whatever the URL's host.
func httpClient(addr string, tlsConfig *tls.Config) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return clientDialer().DialContext(ctx, network, addr)
			},
			TLSClientConfig: tlsConfig,
		},
	}
}

func getJSON(t *testing.T, client *http.Client, url, spoofedXFF string) seenRequest {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if spoofedXFF != "" {
		req.Header.Set("X-Forwarded-For", spoofedXFF)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var seen seenRequest
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&seen); err != nil {
		t.Fatal(err)
	}
	return seen
}
