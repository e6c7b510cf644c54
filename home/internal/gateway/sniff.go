package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"
)

// ACMETLSALPNProto is the ALPN protocol of TLS-ALPN-01 validation (RFC 8737):
// the CA's ClientHello offers it alone.
const ACMETLSALPNProto = "acme-tls/1"

// tlsHandshakeRecord is the first byte of every TLS connection (a
// handshake record carrying the ClientHello).
const tlsHandshakeRecord = 0x16

// hello is what the gateway learns from a ClientHello before deciding who
// answers it.
type hello struct {
	serverName string
	protos     []string
}

// acmeChallenge reports whether the ClientHello is a TLS-ALPN-01
// validation attempt.
func (h *hello) acmeChallenge() bool {
	return h != nil && slices.Contains(h.protos, ACMETLSALPNProto)
}

// errHelloRead stops the handshake used to parse a ClientHello.
var errHelloRead = errors.New("gateway: ClientHello read")

// sniff looks at the start of an https connection within HeaderTimeout
// without consuming it: plain reports a non-TLS first byte (an HTTP request
// the cloud routed here for an ACME HTTP-01 challenge); otherwise h is the
// ClientHello, and c replays every byte read when served afterwards.
func (g *Gateway) sniff(ctx context.Context, c *proxiedConn) (h *hello, plain bool, err error) {
	sctx, cancel := context.WithTimeout(ctx, g.o.HeaderTimeout)
	defer cancel()
	stop := context.AfterFunc(sctx, func() { c.Conn.Close() })
	defer func() {
		if !stop() && err == nil {
			err = fmt.Errorf("nothing within %s: %w", g.o.HeaderTimeout, context.Cause(sctx))
		}
	}()
	first, err := c.br.Peek(1)
	if err != nil {
		return nil, false, fmt.Errorf("reading the first byte after the PROXY header: %w", err)
	}
	if first[0] != tlsHandshakeRecord {
		return nil, true, nil
	}
	h, seen, err := readClientHello(c.br)
	c.r = io.MultiReader(bytes.NewReader(seen), c.br)
	if err != nil {
		return nil, false, fmt.Errorf("reading the TLS ClientHello: %w", err)
	}
	return h, false, nil
}

// readClientHello parses the ClientHello at the start of r with crypto/tls
// itself (so fragmented or large hellos are handled like a real server
// would) and returns it with every byte it read, for replaying.
func readClientHello(r io.Reader) (*hello, []byte, error) {
	var seen bytes.Buffer
	var h *hello
	err := tls.Server(helloConn{r: io.TeeReader(r, &seen)}, &tls.Config{
		GetConfigForClient: func(ch *tls.ClientHelloInfo) (*tls.Config, error) {
			h = &hello{serverName: ch.ServerName, protos: slices.Clone(ch.SupportedProtos)}
			return nil, errHelloRead
		},
	}).Handshake()
	if h == nil {
		if err == nil {
			err = errors.New("no ClientHello")
		}
		return nil, seen.Bytes(), err
	}
	return h, seen.Bytes(), nil
}

// helloConn feeds a ClientHello to crypto/tls and swallows its answer (the
// alert sent when the handshake is stopped).
type helloConn struct{ r io.Reader }

func (c helloConn) Read(p []byte) (int, error)     { return c.r.Read(p) }
func (c helloConn) Write(p []byte) (int, error)    { return len(p), nil }
func (helloConn) Close() error                     { return nil }
func (helloConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (helloConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (helloConn) SetDeadline(time.Time) error      { return nil }
func (helloConn) SetReadDeadline(time.Time) error  { return nil }
func (helloConn) SetWriteDeadline(time.Time) error { return nil }

// serveChallenge completes a TLS-ALPN-01 handshake with the challenge
// certificate for the name, then closes: the CA only checks the
// certificate.
func (g *Gateway) serveChallenge(ctx context.Context, c net.Conn, name string, cert *tls.Certificate) error {
	tc := tls.Server(c, &tls.Config{
		Certificates: []tls.Certificate{*cert},
		NextProtos:   []string{ACMETLSALPNProto},
		MinVersion:   tls.VersionTLS12,
	})
	hctx, cancel := context.WithTimeout(ctx, g.o.HeaderTimeout)
	defer cancel()
	stop := context.AfterFunc(hctx, func() { c.Close() })
	defer stop()
	if err := tc.HandshakeContext(hctx); err != nil {
		return fmt.Errorf("TLS-ALPN-01 handshake for %s: %w", name, err)
	}
	return tc.Close()
}

// acmeOnly answers plain HTTP on an https entry's port: ACME HTTP-01
// challenges (through WrapHTTP) and 404 for everything else, so that the
// cloud's route for /.well-known/acme-challenge/ on https-only hosts never
// reaches the local service in clear text.
func (g *Gateway) acmeOnlyHandler() http.Handler {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "404 page not found: this name is served over https only", http.StatusNotFound)
	})
	if g.o.WrapHTTP != nil {
		h = g.o.WrapHTTP(h)
	}
	return h
}
