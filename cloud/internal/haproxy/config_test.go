package haproxy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"homeport.dev/proto/testnet"
)

func testParams(dir string) Params {
	return Params{
		HTTPAddr:    ":80",
		HTTPSAddr:   ":443",
		TCPPorts:    PortRange{First: 10000, Last: 10099},
		TunnelPorts: PortRange{First: 20000, Last: 20159},
		MapDir:      dir,
		SocketPath:  filepath.Join(dir, "admin.sock"),
	}
}

// deploy/haproxy holds a copy of the template for operators; it must not drift.
func TestDeployTemplateIsTheEmbeddedOne(t *testing.T) {
	deployed, err := os.ReadFile("../../../deploy/haproxy/haproxy.cfg.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(deployed, []byte(configTemplate)) {
		t.Fatal("deploy/haproxy/haproxy.cfg.tmpl differs from cloud/internal/haproxy/haproxy.cfg.tmpl; copy the latter over the former")
	}
}

func TestRender(t *testing.T) {
	dir := "/var/lib/homeport/haproxy"
	cfg, err := Render(testParams(dir))
	if err != nil {
		t.Fatal(err)
	}
	s := string(cfg)
	for _, want := range []string{
		"stats socket /var/lib/homeport/haproxy/admin.sock mode 600 level admin\n",
		"req.ssl_sni,lower,map_str_int(/var/lib/homeport/haproxy/https.map,0)",
		"var(txn.host),map_str_int(/var/lib/homeport/haproxy/http.map,0)",
		"dst_port,map_str_int(/var/lib/homeport/haproxy/tcp.map,0)",
		"bind :10000-10099\n",
		"-m int 20000:20159",
		"set-dst ipv4(127.0.0.1)",
		"master-worker\n",
		"    maxconn 10000\n",
		"tcp-request content reject if { sc0_conn_cur gt 64 }",
		"tcp-request connection reject if { sc0_conn_cur gt 64 }",
		"if { sc0_conn_cur gt 64 }\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %q", want)
		}
	}
	if strings.Count(s, "stats socket") != 1 || strings.Contains(s, "map_int") || strings.Contains(s, "pidfile") || strings.Contains(global(s), "maxconn") {
		t.Errorf("config has an unexpected stats socket, map_int or pidfile:\n%s", s)
	}
}

// The cloud's own name: TLS by SNI and the HTTP challenges go to its TLS
// listener with a PROXY header, its other HTTP requests are redirected, and
// without an API host none of it is rendered.
func TestRenderAPIHost(t *testing.T) {
	p := testParams("/srv/maps")
	p.APIHost, p.APITLSAddr = "cloud.example.com", "127.0.0.1:8444"
	cfg, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(cfg)
	for _, want := range []string{
		"tcp-request content accept if { req.ssl_sni,lower -m str cloud.example.com }\n",
		"use_backend cloud_tls if { req.ssl_sni,lower -m str cloud.example.com }\n",
		"redirect location https://%[var(txn.host)]%[pathq] code 301 if { var(txn.host) -m str cloud.example.com } !{ path_beg /.well-known/acme-challenge/ }\n",
		"use_backend cloud_http if { var(txn.host) -m str cloud.example.com }\n",
		"|| { var(txn.host) -m str cloud.example.com }\n",
		"backend cloud_tls\n    mode tcp\n    server cloud 127.0.0.1:8444 send-proxy-v2\n",
		"backend cloud_http\n    mode http\n    server cloud 127.0.0.1:8444 send-proxy-v2\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %q", want)
		}
	}
	p.APIHost, p.APITLSAddr = "", ""
	cfg, _ = Render(p)
	if strings.Contains(string(cfg), "cloud_") {
		t.Errorf("config without an API host routes to the cloud:\n%s", cfg)
	}
}

// The http->https redirects name the public HTTPS port unless it is 443:
// HTTPSAddr's own, or HTTPSPort when a port forward puts it elsewhere.
func TestRenderRedirectPort(t *testing.T) {
	tests := []struct {
		name      string
		httpsAddr string
		httpsPort int
		want      string
	}{
		{"default 443", ":443", 0, "https://%[var(txn.host)]%[pathq]"},
		{"dev 8443", "127.0.0.1:8443", 0, "https://%[var(txn.host)]:8443%[pathq]"},
		{"forwarded to 443", "127.0.0.1:8443", 443, "https://%[var(txn.host)]%[pathq]"},
		{"forwarded to 4443", ":443", 4443, "https://%[var(txn.host)]:4443%[pathq]"},
	}
	for _, tt := range tests {
		p := testParams("/srv/maps")
		p.APIHost, p.APITLSAddr = "cloud.example.com", "127.0.0.1:8444"
		p.HTTPSAddr, p.HTTPSPort = tt.httpsAddr, tt.httpsPort
		cfg, err := Render(p)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		// Both redirects: the API host's and an https-only name's.
		if n := strings.Count(string(cfg), "redirect location "+tt.want+" code "); n != 2 {
			t.Errorf("%s: %d redirects to %s, want 2:\n%s", tt.name, n, tt.want, cfg)
		}
	}
}

// The offline page is served from PageDir (MapDir by default), which
// WriteConfig fills.
func TestWriteConfigWritesTheOfflinePage(t *testing.T) {
	dir := t.TempDir()
	pages := filepath.Join(dir, "pages")
	p := testParams(dir)
	p.PageDir = pages
	if err := WriteConfig(filepath.Join(dir, "haproxy.cfg"), p); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "haproxy.cfg"))
	if n := strings.Count(string(cfg), "file "+filepath.Join(pages, "offline.html")+" "); n != 2 {
		t.Errorf("config names the offline page %d times, want 2 (tunnel_http, tunnel_http_raw):\n%s", n, cfg)
	}
	if b, err := os.ReadFile(filepath.Join(pages, "offline.html")); err != nil || string(b) != OfflinePage {
		t.Errorf("offline page on disk: %v %q", err, b)
	}
}

// Public HTTP reaches homes with a PROXY header that binds each connection
// to its visitor, or, with ReuseHomeConnections, without one and shared
// between visitors from a bounded idle pool; TLS and TCP keep the header
// either way (nothing else can carry the visitor's address there).
func TestRenderReuseHomeConnections(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		p := testParams("/srv/maps")
		p.ReuseHomeConnections, p.IdlePoolMax = reuse, IdlePoolFor(4000)
		cfg, err := Render(p)
		if err != nil {
			t.Fatal(err)
		}
		httpBackend, tcpBackend := section(string(cfg), "backend tunnel_http\n"), section(string(cfg), "backend tunnel_tcp\n")
		if !strings.Contains(tcpBackend, "server dyn 0.0.0.0:0 send-proxy-v2\n") {
			t.Errorf("reuse %v: tunnel_tcp without the PROXY header:\n%s", reuse, tcpBackend)
		}
		want := "    server dyn 0.0.0.0:0 send-proxy-v2\n"
		if reuse {
			want = "    http-reuse always\n    server dyn 0.0.0.0:0 pool-max-conn 1000 pool-low-conn 1000 pool-purge-delay 5s\n"
		}
		if !strings.HasSuffix(httpBackend, want) || strings.Contains(httpBackend, "send-proxy") != !reuse {
			t.Errorf("reuse %v: tunnel_http is\n%s\nwant it to end with\n%s", reuse, httpBackend, want)
		}
	}
}

func TestIdlePoolFor(t *testing.T) {
	for edge, want := range map[int]int{0: 0, 501: 125, 6480: 1620, 1 << 30: 10000} {
		if got := IdlePoolFor(edge); got != want {
			t.Errorf("IdlePoolFor(%d) = %d, want %d", edge, got, want)
		}
	}
}

// section is the config's section starting with head, up to the next blank line.
func section(cfg, head string) string {
	start := strings.Index(cfg, "\n"+head)
	if start < 0 {
		return ""
	}
	s := cfg[start+1:]
	if end := strings.Index(s, "\n\n"); end >= 0 {
		s = s[:end+1]
	}
	return s
}

func TestRenderPassesHAProxyCheck(t *testing.T) {
	testnet.RequireCommand(t, "haproxy", "install HAProxy 2.6+ (deploy/install-deps.sh does) to check the rendered config")
	for _, reuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("reuse home connections %v", reuse), func(t *testing.T) { checkRender(t, reuse) })
	}
}

func checkRender(t *testing.T, reuse bool) {
	dir := t.TempDir()
	p := testParams(dir)
	p.PidFile = filepath.Join(dir, "haproxy.pid")
	p.TCPHost = "::1"
	p.HTTPAddr = "[::1]:8080"
	p.TunnelHost = "10.0.0.2"
	p.APIHost, p.APITLSAddr = "cloud.example.com", "127.0.0.1:8444"
	p.ReuseHomeConnections, p.IdlePoolMax = reuse, 1000
	path := filepath.Join(dir, "haproxy.cfg")
	if err := WriteConfig(path, p); err != nil {
		t.Fatal(err)
	}
	if cfg, _ := os.ReadFile(path); !strings.Contains(string(cfg), "bind [::1]:10000-10099\n") {
		t.Errorf("IPv6 TCP range bind not bracketed:\n%s", cfg)
	}
	if err := WriteMaps(dir, nil); err != nil {
		t.Fatal(err)
	}
	if err := CheckConfig(context.Background(), "", path); err != nil {
		t.Fatal(err)
	}
	// HAProxy prints its warnings at every start, into the operator's log
	// (compose's haproxy service, the cloud's log in systemd mode).
	out, err := exec.Command("haproxy", "-c", "-f", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "[WARNING]") {
		t.Errorf("haproxy -c: %v, warnings:\n%s", err, out)
	}
}

func TestRenderRejectsBadParams(t *testing.T) {
	tests := map[string]func(*Params){
		"relative map dir":      func(p *Params) { p.MapDir = "maps" },
		"space in socket path":  func(p *Params) { p.SocketPath = "/run/a b.sock" },
		"newline in pid file":   func(p *Params) { p.PidFile = "/run/x\nstats socket ipv4@0.0.0.0:9999" },
		"hostname bind":         func(p *Params) { p.HTTPAddr = "example.com:80" },
		"no port":               func(p *Params) { p.HTTPSAddr = "127.0.0.1" },
		"bad port":              func(p *Params) { p.HTTPSAddr = ":0443" },
		"tcp host not an ip":    func(p *Params) { p.TCPHost = "0.0.0.0:1" },
		"empty tunnel range":    func(p *Params) { p.TunnelPorts = PortRange{} },
		"ranges overlap":        func(p *Params) { p.TCPPorts = PortRange{First: 20100, Last: 20200} },
		"ipv6 tunnel host":      func(p *Params) { p.TunnelHost = "::1" },
		"negative maxconn":      func(p *Params) { p.MaxConn = -1 },
		"socket path injection": func(p *Params) { p.SocketPath = "/run/s.sock mode 666" },
		"api host injection":    func(p *Params) { p.APIHost, p.APITLSAddr = "a.com }\n    use_backend x", "127.0.0.1:8444" },
		"api host an ip":        func(p *Params) { p.APIHost, p.APITLSAddr = "127.0.0.1", "127.0.0.1:8444" },
		"api host without addr": func(p *Params) { p.APIHost = "cloud.example.com" },
		"api tls addr a name":   func(p *Params) { p.APIHost, p.APITLSAddr = "cloud.example.com", "localhost:8444" },
		"api tls addr ipv6":     func(p *Params) { p.APIHost, p.APITLSAddr = "cloud.example.com", "[::1]:8444" },
		"https port too big":    func(p *Params) { p.HTTPSPort = 65536 },
		"https port negative":   func(p *Params) { p.HTTPSPort = -1 },
		"page dir injection":    func(p *Params) { p.PageDir = "/srv/p ages\n    errorfile 503 /etc/passwd" },
		"relative page dir":     func(p *Params) { p.PageDir = "pages" },
		"negative idle pool":    func(p *Params) { p.IdlePoolMax = -1 },
	}
	for name, mutate := range tests {
		p := testParams("/srv/maps")
		mutate(&p)
		if _, err := Render(p); err == nil {
			t.Errorf("%s: Render accepted %+v", name, p)
		}
	}
}

// global is the config's global section.
func global(cfg string) string {
	start := strings.Index(cfg, "\nglobal\n")
	end := strings.Index(cfg, "\ndefaults\n")
	if start < 0 || end < start {
		return cfg
	}
	return cfg[start:end]
}
