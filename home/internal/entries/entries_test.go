package entries

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"homeport.dev/home/internal/store"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name     string
		in       store.Entry
		lan      bool
		ok       bool
		target   string
		mode     string
		contains string
	}{
		{"https default mode", store.Entry{Scheme: "https", Host: " App.Example.com", Target: "localhost:3000"}, false, true, "localhost:3000", "terminate", ""},
		{"passthrough", store.Entry{Scheme: "https", Host: "a.example.com", Target: "localhost:8443", Mode: "passthrough"}, false, true, "localhost:8443", "passthrough", ""},
		{"deploy path", store.Entry{Scheme: "https", Host: "a.example.com", Target: "localhost:8443", DeployPath: "/etc/ssl/app/"}, false, true, "localhost:8443", "terminate", ""},
		{"relative deploy path", store.Entry{Scheme: "https", Host: "a.example.com", Target: "localhost:8443", DeployPath: "ssl"}, false, false, "", "", "absolute"},
		{"deploy path on tcp", store.Entry{Scheme: "tcp", PublicPort: 10001, Target: "localhost:22", DeployPath: "/x"}, false, false, "", "", "tcp entries"},
		{"bare port target", store.Entry{Scheme: "http", Host: "a.example.com", Target: "8080"}, false, true, "localhost:8080", "", ""},
		{"ipv6 loopback", store.Entry{Scheme: "tcp", PublicPort: 10001, Target: "[::1]:22"}, false, true, "[::1]:22", "", ""},
		{"terminate", store.Entry{Scheme: "https", Host: "a.example.com", Target: "127.0.0.1:80", Mode: "terminate"}, false, true, "127.0.0.1:80", "terminate", ""},
		{"private", store.Entry{Scheme: "tcp", Private: true, Name: "gpu-ui", Target: "localhost:7860"}, false, true, "localhost:7860", "", ""},
		{"lan without flag", store.Entry{Scheme: "tcp", PublicPort: 10001, Target: "192.168.1.20:22"}, false, false, "", "", "lan_forwarding"},
		{"lan name without flag", store.Entry{Scheme: "http", Host: "a.example.com", Target: "nas.lan:80"}, false, false, "", "", "lan_forwarding"},
		{"lan with flag", store.Entry{Scheme: "tcp", PublicPort: 10001, Target: "192.168.1.20:22"}, true, true, "192.168.1.20:22", "", ""},
		{"bad host", store.Entry{Scheme: "https", Host: "a;clear map.example.com", Target: "localhost:1"}, false, false, "", "", "invalid label"},
		{"bad mode", store.Entry{Scheme: "https", Host: "a.example.com", Target: "localhost:1", Mode: "magic"}, false, false, "", "", "passthrough"},
		{"bad target port", store.Entry{Scheme: "http", Host: "a.example.com", Target: "localhost:70000"}, false, false, "", "", "1-65535"},
		{"target junk", store.Entry{Scheme: "http", Host: "a.example.com", Target: "local host:80"}, true, false, "", "", "not a valid name"},
		{"tcp no port", store.Entry{Scheme: "tcp", Target: "localhost:22"}, false, false, "", "", "public port"},
		{"private bad name", store.Entry{Scheme: "tcp", Private: true, Name: "GPU UI", Target: "localhost:1"}, false, false, "", "", "name"},
		{"bad scheme", store.Entry{Scheme: "ftp", Host: "a.example.com", Target: "localhost:21"}, false, false, "", "", "scheme"},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in, tt.lan)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("%s: error %q does not mention %q", tt.name, err, tt.contains)
			}
			continue
		}
		if got.Target != tt.target || got.Mode != tt.mode {
			t.Errorf("%s: got target %q mode %q", tt.name, got.Target, got.Mode)
		}
	}
	if e, _ := Normalize(store.Entry{Scheme: "https", Host: " App.Example.com", Target: "3000"}, false); e.Host != "app.example.com" {
		t.Errorf("host not normalised: %q", e.Host)
	}
}

func TestProbeTellsTLSFromPlainHTTP(t *testing.T) {
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	// A TLS service that refuses the handshake (client certificates
	// required) still speaks TLS.
	strict := httptest.NewUnstartedServer(http.NotFoundHandler())
	strict.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
	strict.StartTLS()
	defer strict.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	tests := []struct {
		name, target, mode string
		err                bool
	}{
		{"plain http", plain.Listener.Addr().String(), store.ModeTerminate, false},
		{"tls", tlsSrv.Listener.Addr().String(), store.ModePassthrough, false},
		{"tls requiring client certs", strict.Listener.Addr().String(), store.ModePassthrough, false},
		{"nothing listening", dead, store.ModeTerminate, true},
	}
	for _, tt := range tests {
		mode, why, err := Probe(context.Background(), tt.target, "app.example.com")
		if mode != tt.mode || (err != nil) != tt.err || err == nil && why == "" {
			t.Errorf("%s: mode %q why %q err %v; want %q (error %v)", tt.name, mode, why, err, tt.mode, tt.err)
		}
	}
}
