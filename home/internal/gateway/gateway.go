// Package gateway is what a forwarded connection reaches first on the home.
//
// The cloud's HAProxy puts a PROXY v2 header in front of every public
// connection; the gateway reads it (under a deadline) to learn the internet
// client's address. Plain HTTP may come without it, from a cloud that shares
// its connections to a home between visitors: each request then names its
// visitor in X-Forwarded-For (HAProxy's own, the last value). The gateway
// then serves the connection as its entry says: tcp pipes
// bytes to the local service (optionally passing a PROXY v2 header on),
// http reverse-proxies to the local HTTP service with X-Forwarded-For and
// X-Forwarded-Proto, https either passes the TLS bytes through to a local
// TLS service or terminates TLS with the home's own certificate (HTTP/1.1
// and HTTP/2) and reverse-proxies plain HTTP. Targets other than this
// machine need features.lan_forwarding.
//
// The home answers ACME challenges itself, on the paths the cloud already
// routes, so no temporary mapping is needed and local services keep their
// ports: on an https port the gateway peeks at the ClientHello and serves a
// TLS-ALPN-01 validation ("acme-tls/1") with the challenge certificate
// (passthrough entries included; their other connections go through
// untouched); plain HTTP arriving on an https port (the cloud's route for
// /.well-known/acme-challenge/ on https-only hosts) gets only HTTP-01
// answers and 404; http entries answer HTTP-01 before proxying (WrapHTTP).
package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// Defaults of Options.
const (
	DefaultHeaderTimeout = 10 * time.Second
	DefaultDialTimeout   = 5 * time.Second
)

// Options configure a Gateway.
type Options struct {
	// Home is the home's slug, for logs.
	Home string
	// AllowLAN lets entries target other hosts than this machine
	// (the profile's features.lan_forwarding).
	AllowLAN bool
	// HeaderTimeout bounds the wait for the PROXY header and, for
	// terminated https, the TLS handshake.
	HeaderTimeout time.Duration
	// DialTimeout bounds connecting to the local service.
	DialTimeout time.Duration
	// WrapHTTP, if set, wraps the reverse proxy of every http entry, and
	// the 404 handler of plain HTTP on https ports: the seam for answering
	// ACME HTTP-01 challenges on the home itself (certs.Manager.HTTPHandler)
	// before anything else.
	WrapHTTP func(http.Handler) http.Handler
	// ChallengeCert, if set, returns the TLS-ALPN-01 certificate of a
	// challenge pending for serverName; ok is false when there is none
	// (the connection is then served as the entry says: a passthrough
	// entry's local service may run its own ACME client).
	ChallengeCert func(serverName string) (cert *tls.Certificate, ok bool)
	// Log receives events with the keys home, port, target and err.
	Log *slog.Logger
}

// Gateway serves forwarded connections. It owns one HTTP server shared by
// every http entry and terminated https entry; Close stops it.
type Gateway struct {
	o         Options
	log       *slog.Logger
	dialer    *net.Dialer
	transport *http.Transport
	server    *http.Server
	listener  *connListener
	acmeOnly  http.Handler  // plain HTTP on https ports
	served    chan struct{} // closed when the HTTP server has returned
}

// New returns a gateway; call Close when done.
func New(o Options) *Gateway {
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = DefaultHeaderTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	g := &Gateway{o: o, log: o.Log.With("home", o.Home), served: make(chan struct{})}
	g.dialer = &net.Dialer{Timeout: o.DialTimeout, ControlContext: g.dialControl}
	if !o.AllowLAN {
		// Loopback only: TCP keepalives would find no dead peer there, and
		// setting them costs four system calls per forwarded connection.
		g.dialer.KeepAlive = -1
	}
	g.transport = &http.Transport{
		DialContext:           g.dialer.DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass the service's encoding through untouched
	}
	g.listener = newConnListener()
	g.acmeOnly = g.acmeOnlyHandler()
	g.server = &http.Server{
		Handler:           http.HandlerFunc(g.serveRequest),
		ConnContext:       connContext,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(g.served)
		g.server.Serve(g.listener)
	}()
	return g
}

// Close stops the HTTP server, closing its connections, and waits for it.
func (g *Gateway) Close() error {
	err := g.server.Close()
	<-g.served
	g.transport.CloseIdleConnections()
	return err
}

// route is a validated entry, ready to serve.
type route struct {
	Entry
	tls     *tls.Config  // terminated https
	handler http.Handler // http and terminated https: the reverse proxy, maybe wrapped
	plain   *route       // https: plain HTTP on this port, ACME challenges only
	count   *Counter     // Entry.Count, or one nobody reads
}

// Handler validates e and returns the function that serves the connections
// forwarded to its tunnel port (tunnel.Forward.Handler). It returns when the
// connection is done or ctx ends, and closes conn.
func (g *Gateway) Handler(e Entry) (func(ctx context.Context, conn net.Conn), error) {
	if err := e.Validate(g.o.AllowLAN); err != nil {
		return nil, err
	}
	r := &route{Entry: e, count: e.Count}
	if r.count == nil {
		r.count = new(Counter) // every connection takes the same path
	}
	if e.Kind == HTTP || e.TLS != nil {
		r.handler = g.reverseProxy(e.Target)
	}
	if e.Kind == HTTP && g.o.WrapHTTP != nil {
		r.handler = g.o.WrapHTTP(r.handler)
	}
	if e.TLS != nil {
		r.tls = e.TLS.Clone()
	}
	if e.Kind == HTTPS {
		r.plain = &route{Entry: e, handler: g.acmeOnly, count: r.count}
	}
	return func(ctx context.Context, conn net.Conn) { g.serve(ctx, conn, r) }, nil
}

// serve reads the PROXY header and dispatches by kind.
func (g *Gateway) serve(ctx context.Context, conn net.Conn, r *route) {
	defer conn.Close()
	log := g.log.With("port", portOf(conn.LocalAddr()), "target", r.Target)
	// Plain HTTP may come without the header: a cloud that reuses its
	// connections to homes names each request's visitor in X-Forwarded-For.
	httpOK := r.Kind == HTTP || r.Kind == HTTPS
	c, hdr, err := g.readHeader(ctx, conn, r.Private, httpOK, r.count)
	switch {
	case errors.Is(err, errWithdrawn):
		log.Debug("gateway: channel closed before its first byte (a spare the cloud opened ahead of a visitor)")
		return
	case err != nil:
		log.Info("gateway: connection refused", "err", err)
		return
	}
	if r.Kind == HTTPS && !r.Private {
		h, plain, err := g.sniff(ctx, c)
		switch {
		case err != nil:
			log.Info("gateway: connection dropped", "err", err)
			return
		case plain:
			g.serveHTTP(ctx, c, r.plain, nil, log)
			return
		case h.acmeChallenge() && g.o.ChallengeCert != nil:
			if cert, ok := g.o.ChallengeCert(h.serverName); ok {
				if err := g.serveChallenge(ctx, c, h.serverName, cert); err != nil {
					log.Info("gateway: TLS-ALPN-01 challenge not answered", "domain", h.serverName, "err", err)
					return
				}
				log.Debug("gateway: TLS-ALPN-01 challenge answered", "domain", h.serverName)
				return
			}
		}
	}
	switch {
	case r.Kind == HTTP:
		g.serveHTTP(ctx, c, r, nil, log)
	case r.tls != nil:
		g.serveHTTP(ctx, c, r, r.tls, log)
	default:
		g.servePipe(ctx, c, hdr, r, log)
	}
}

// proxiedConn is a forwarded connection after its PROXY header: reads
// continue from the buffer that held the header, and RemoteAddr is the
// internet client's address. Every byte read from it or written to it is
// counted in count.
type proxiedConn struct {
	net.Conn
	br     *bufio.Reader // the connection's buffer, for peeking
	r      io.Reader     // what Read returns: br, after replayed bytes
	remote net.Addr
	count  *Counter
	// forwarded: the connection came without a PROXY header, as plain
	// HTTP whose requests (from any number of visitors, in turn) each
	// name their visitor in X-Forwarded-For; remote is the cloud's end.
	forwarded bool
}

func (c *proxiedConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.count.in.Add(uint64(n))
	return n, err
}

func (c *proxiedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.count.out.Add(uint64(n))
	return n, err
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }

// WriteTo copies the connection's data to w: what the header's buffer still
// holds, then the connection's own WriteTo (bufio.Reader.WriteTo uses it),
// which for a tunnel channel hands over the received packets uncopied, up
// to 8 in one writev. The bytes are counted when it returns: a counting
// writer in between would hide the socket's writev and split each batch
// into a write per packet (measured by BenchmarkDataPath: 80 -> 103 system
// calls and 0.77 -> 0.87 s of CPU per GB uploaded).
func (c *proxiedConn) WriteTo(w io.Writer) (int64, error) {
	n, err := io.Copy(w, c.r)
	c.count.in.Add(uint64(n))
	return n, err
}

// CloseWrite half-closes, when the underlying connection can.
func (c *proxiedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// errWithdrawn is a forwarded connection that ended before its first byte:
// the cloud opens channels to a busy tunnel port ahead of its visitors
// (--ssh-spare-channels) and closes those no visitor took.
var errWithdrawn = errors.New("closed before its first byte")

// readHeader reads the PROXY header of a public entry's connection within
// HeaderTimeout. A connection without one did not come through the cloud's
// HAProxy and is refused, except, when httpOK, one that starts like an HTTP
// request: HAProxy sends HTTP without the header when it reuses its
// connections to homes across visitors (the cloud's
// --reuse-home-connections), and the returned connection is then marked
// forwarded. Private entries have no header. The bytes after the header
// are counted in count.
func (g *Gateway) readHeader(ctx context.Context, conn net.Conn, private, httpOK bool, count *Counter) (*proxiedConn, *proxyproto.Header, error) {
	br := bufio.NewReader(conn)
	if private {
		return &proxiedConn{Conn: conn, br: br, r: br, remote: conn.RemoteAddr(), count: count}, nil, nil
	}
	// Closing the connection interrupts a read that waits too long: a
	// connection without its header in time is dropped anyway, and this
	// needs no read deadline of it.
	hctx, cancel := context.WithTimeout(ctx, g.o.HeaderTimeout)
	defer cancel()
	stop := context.AfterFunc(hctx, func() { conn.Close() })
	headerless := false
	var hdr *proxyproto.Header
	_, err := br.Peek(1)
	withdrawn := err == io.EOF
	if err == nil && httpOK {
		headerless, err = startsLikeHTTP(br)
	}
	if err == nil && !headerless {
		hdr, err = proxyproto.Read(br)
	}
	if !stop() {
		return nil, nil, fmt.Errorf("no PROXY header within %s: %w", g.o.HeaderTimeout, context.Cause(hctx))
	}
	if withdrawn {
		return nil, nil, errWithdrawn
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading the PROXY header the cloud sends first: %w", err)
	}
	if headerless {
		return &proxiedConn{Conn: conn, br: br, r: br, remote: conn.RemoteAddr(), count: count, forwarded: true}, nil, nil
	}
	remote := conn.RemoteAddr()
	if hdr.Command.IsProxy() && hdr.SourceAddr != nil {
		remote = hdr.SourceAddr
	}
	return &proxiedConn{Conn: conn, br: br, r: br, remote: remote, count: count}, hdr, nil
}

// servePipe connects to the target and copies both ways.
func (g *Gateway) servePipe(ctx context.Context, c *proxiedConn, hdr *proxyproto.Header, r *route, log *slog.Logger) {
	target, err := g.dialer.DialContext(ctx, "tcp", r.Target)
	if err != nil {
		log.Warn("gateway: local service unreachable", "err", err)
		return
	}
	defer target.Close()
	if r.SendProxy {
		if _, err := outgoingHeader(c, hdr).WriteTo(target); err != nil {
			log.Warn("gateway: sending the PROXY header to the local service", "err", err)
			return
		}
	}
	g.pipe(ctx, c, target)
}

// outgoingHeader is the PROXY v2 header passed on to a local service: the
// internet client as source, the public address it connected to as
// destination (without the cloud's TLVs). It is rebuilt from the addresses,
// not copied: a header with an unspecified family or protocol (found by
// FuzzReadHeader) would be re-encoded as PROXY over AF_UNSPEC, which
// go-proxyproto and most parsers refuse; without usable addresses the local
// service gets the connection's own.
func outgoingHeader(c *proxiedConn, in *proxyproto.Header) *proxyproto.Header {
	if in != nil && in.Command.IsProxy() {
		if h := proxyproto.HeaderProxyFromAddrs(2, in.SourceAddr, in.DestinationAddr); h.Command.IsProxy() {
			return h
		}
	}
	return proxyproto.HeaderProxyFromAddrs(2, c.RemoteAddr(), c.LocalAddr())
}

func portOf(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	return 0
}

// startsLikeHTTP reports whether br starts with an HTTP request rather than
// a PROXY header: its first byte is an upper-case letter, as every HTTP/1
// method's is, and it does not go on as "PROXY " (v1; v2's signature starts
// with CR). It peeks no further than it must to tell.
func startsLikeHTTP(br *bufio.Reader) (bool, error) {
	const v1 = "PROXY "
	for n := 1; n <= len(v1); n++ {
		b, err := br.Peek(n)
		if err != nil {
			return false, err
		}
		if b[0] < 'A' || b[0] > 'Z' {
			return false, nil
		}
		if string(b) != v1[:n] {
			return true, nil
		}
	}
	return false, nil
}
