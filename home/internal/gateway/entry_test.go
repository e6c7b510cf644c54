package gateway

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
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

// readClientHello must see the name and ALPN list of a real ClientHello and
// hand back exactly the bytes it consumed, so that replaying them to the
// real TLS server (or the local service) loses nothing.
func TestReadClientHelloReplaysEverything(t *testing.T) {
	for _, protos := range [][]string{nil, {"acme-tls/1"}, {"h2", "http/1.1"}} {
		client, server := net.Pipe()
		go func() {
			tls.Client(client, &tls.Config{ServerName: "app.example.com", NextProtos: protos, InsecureSkipVerify: true}).Handshake()
			client.Close()
		}()
		var sent bytes.Buffer
		h, seen, err := readClientHello(io.TeeReader(server, &sent))
		server.Close()
		if err != nil {
			t.Fatalf("%v: %v", protos, err)
		}
		if h.serverName != "app.example.com" || strings.Join(h.protos, ",") != strings.Join(protos, ",") {
			t.Errorf("hello = %+v, want app.example.com %v", h, protos)
		}
		if h.acmeChallenge() != slices.Contains(protos, ACMETLSALPNProto) {
			t.Errorf("%v: acmeChallenge() = %v", protos, h.acmeChallenge())
		}
		if !bytes.Equal(seen, sent.Bytes()) || len(seen) == 0 || seen[0] != tlsHandshakeRecord {
			t.Errorf("%v: replay holds %d bytes, %d were read", protos, len(seen), sent.Len())
		}
	}
	if _, _, err := readClientHello(strings.NewReader("GET / HTTP/1.1\r\n\r\n")); err == nil {
		t.Error("plain HTTP parsed as a ClientHello")
	}
}
