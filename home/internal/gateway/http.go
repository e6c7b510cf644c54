package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
)

// reverseProxy forwards requests to the plain-HTTP service at target,
// keeping the public Host (virtual hosts keep working) and setting
// X-Forwarded-For to the internet client (from the PROXY header, never from
// a header the client sent), X-Forwarded-Host and X-Forwarded-Proto.
// Responses stream; WebSocket and other upgrades are relayed.
func (g *Gateway) reverseProxy(target string) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = target
			pr.SetXForwarded()
		},
		Transport: g.transport,
		ErrorLog:  slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the client went away
			}
			g.log.Warn("gateway: local HTTP service failed", "target", target, "err", err)
			http.Error(w, "502 Bad Gateway: the service behind this address is not answering at home", http.StatusBadGateway)
		},
	}
}

type routeKey struct{}

// connContext gives each HTTP connection's requests the route it came for.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if dc, ok := c.(*deadlineConn); ok {
		return context.WithValue(ctx, routeKey{}, dc.route)
	}
	return ctx
}

func (g *Gateway) serveRequest(w http.ResponseWriter, req *http.Request) {
	r, _ := req.Context().Value(routeKey{}).(*route)
	if r == nil {
		http.Error(w, "no route", http.StatusMisdirectedRequest)
		return
	}
	r.handler.ServeHTTP(w, req)
}

// serveHTTP hands the connection to the gateway's HTTP server and returns
// once that is done with it or ctx ends.
func (g *Gateway) serveHTTP(ctx context.Context, c net.Conn, r *route) {
	dc := newDeadlineConn(c, r)
	defer dc.Close()
	g.handOver(ctx, dc, dc)
}

// serveTLS terminates TLS with the entry's configuration within
// HeaderTimeout, then serves HTTP like serveHTTP.
func (g *Gateway) serveTLS(ctx context.Context, c net.Conn, r *route, log *slog.Logger) {
	dc := newDeadlineConn(c, r)
	defer dc.Close()
	tc := tls.Server(dc, r.tls)
	hctx, cancel := context.WithTimeout(ctx, g.o.HeaderTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		log.Info("gateway: TLS handshake failed", "err", err)
		return
	}
	g.handOver(ctx, tc, dc)
}

// handOver gives c to the HTTP server and waits until dc is closed (the
// server is done with it, or it was hijacked for an upgrade and that ended)
// or ctx ends.
func (g *Gateway) handOver(ctx context.Context, c net.Conn, dc *deadlineConn) {
	if !g.listener.push(ctx, c) {
		return
	}
	select {
	case <-dc.closed:
	case <-ctx.Done():
	}
}

// connListener is the HTTP server's listener: connections are pushed to it
// by handlers instead of accepted from a socket.
type connListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnListener() *connListener {
	return &connListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) push(ctx context.Context, c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	case <-ctx.Done():
		return false
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
