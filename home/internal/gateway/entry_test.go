package gateway

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
)

func TestEntryValidate(t *testing.T) {
	tlsConfig := &tls.Config{}
	tests := []struct {
		name     string
		e        Entry
		allowLAN bool
		wantErr  string // substring; "" means valid
	}{
		{"tcp to loopback", Entry{Kind: TCP, Target: "127.0.0.1:22"}, false, ""},
		{"tcp to localhost", Entry{Kind: TCP, Target: "localhost:25565"}, false, ""},
		{"other loopback address", Entry{Kind: TCP, Target: "127.1.2.3:80"}, false, ""},
		{"ipv6 loopback", Entry{Kind: HTTP, Target: "[::1]:8080"}, false, ""},
		{"https passthrough", Entry{Kind: HTTPS, Target: "localhost:8443"}, false, ""},
		{"https terminated", Entry{Kind: HTTPS, Target: "localhost:3000", TLS: tlsConfig}, false, ""},
		{"tcp with PROXY pass-on", Entry{Kind: TCP, Target: "localhost:25", SendProxy: true}, false, ""},
		{"passthrough with PROXY pass-on", Entry{Kind: HTTPS, Target: "localhost:443", SendProxy: true}, false, ""},
		{"private tcp", Entry{Kind: TCP, Target: "localhost:11434", Private: true}, false, ""},

		{"LAN address without the feature", Entry{Kind: TCP, Target: "192.168.1.10:80"}, false, "features.lan_forwarding: true"},
		{"LAN name without the feature", Entry{Kind: HTTP, Target: "nas.lan:5000"}, false, "features.lan_forwarding: true"},
		{"all interfaces is not loopback", Entry{Kind: TCP, Target: "0.0.0.0:80"}, false, "features.lan_forwarding: true"},
		{"LAN address with the feature", Entry{Kind: TCP, Target: "192.168.1.10:80"}, true, ""},
		{"LAN name with the feature", Entry{Kind: HTTP, Target: "nas.lan:5000"}, true, ""},

		{"unknown kind", Entry{Kind: "udp", Target: "localhost:53"}, false, "not tcp, http or https"},
		{"no kind", Entry{Target: "localhost:53"}, false, "not tcp, http or https"},
		{"no port", Entry{Kind: TCP, Target: "localhost"}, false, "not host:port"},
		{"port 0", Entry{Kind: TCP, Target: "localhost:0"}, false, "1..65535"},
		{"port too big", Entry{Kind: TCP, Target: "localhost:65536"}, false, "1..65535"},
		{"named port", Entry{Kind: TCP, Target: "localhost:http"}, false, "1..65535"},
		{"negative port", Entry{Kind: TCP, Target: "localhost:-1"}, false, "1..65535"},
		{"no host", Entry{Kind: TCP, Target: ":8080"}, false, "no host"},
		{"empty", Entry{Kind: TCP}, false, "not host:port"},
		{"TLS on tcp", Entry{Kind: TCP, Target: "localhost:1", TLS: tlsConfig}, false, "only https"},
		{"TLS on http", Entry{Kind: HTTP, Target: "localhost:1", TLS: tlsConfig}, false, "only https"},
		{"PROXY to http", Entry{Kind: HTTP, Target: "localhost:1", SendProxy: true}, false, "X-Forwarded-For"},
		{"PROXY to terminated https", Entry{Kind: HTTPS, Target: "localhost:1", TLS: tlsConfig, SendProxy: true}, false, "X-Forwarded-For"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Validate(tt.allowLAN)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate: %v, want valid", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("Validate: valid, want an error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("Validate: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLANErrorIsRecognisable(t *testing.T) {
	err := Entry{Kind: TCP, Target: "10.0.0.5:22"}.Validate(false)
	if !errors.Is(err, ErrLANForwarding) {
		t.Fatalf("%v does not wrap ErrLANForwarding", err)
	}
}

func TestHTTP11Only(t *testing.T) {
	tests := []struct{ in, want []string }{
		{nil, nil},
		{[]string{"h2", "http/1.1"}, []string{"http/1.1"}},
		{[]string{"h2"}, nil},
		{[]string{"acme-tls/1", "h2"}, []string{"acme-tls/1", "http/1.1"}},
	}
	for _, tt := range tests {
		in := &tls.Config{NextProtos: tt.in}
		got := http11Only(in).NextProtos
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("http11Only(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if len(tt.in) > 0 && in.NextProtos[0] != tt.in[0] {
			t.Errorf("http11Only changed its argument: %v", in.NextProtos)
		}
	}
}
