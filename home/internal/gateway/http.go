package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"

	"homeport.dev/proto/pooledio"
)

// reverseProxy forwards requests to the plain-HTTP service at target,
// keeping the public Host (virtual hosts keep working) and setting
// X-Forwarded-For to the internet client (from the PROXY header, or the
// value the cloud's HAProxy appended, never from one the client sent),
// X-Forwarded-Host and X-Forwarded-Proto.
// Responses stream; WebSocket and other upgrades are relayed.
func (g *Gateway) reverseProxy(target string) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = target
			pr.SetXForwarded()
		},
		Transport:  g.transport,
		BufferPool: responseBuffers,
		ErrorLog:   slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the client went away
			}
			g.log.Warn("gateway: local HTTP service failed", "target", target, "err", err)
			http.Error(w, "502 Bad Gateway: the service behind this address is not answering at home", http.StatusBadGateway)
		},
	}
}

// responseBuffers are the reverse proxies' copy buffers, taken for one
// response's body and given back after it: 32 KiB, the size ReverseProxy
// would otherwise allocate for every response.
var responseBuffers = pooledio.NewBuffers(32 << 10)

type routeKey struct{}

// forwardedKey marks the requests of a connection without a PROXY header:
// each names its own visitor in X-Forwarded-For.
type forwardedKey struct{}

// connContext gives each HTTP connection's requests the route it came for.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if hc, ok := c.(*httpConn); ok {
		ctx = context.WithValue(ctx, routeKey{}, hc.route)
		if pc, ok := hc.Conn.(*proxiedConn); ok && pc.forwarded {
			ctx = context.WithValue(ctx, forwardedKey{}, true)
		}
	}
	return ctx
}

func (g *Gateway) serveRequest(w http.ResponseWriter, req *http.Request) {
	r, _ := req.Context().Value(routeKey{}).(*route)
	if r == nil {
		http.Error(w, "no route", http.StatusMisdirectedRequest)
		return
	}
	if forwarded, _ := req.Context().Value(forwardedKey{}).(bool); forwarded {
		// One connection carries many visitors' requests in turn: each
		// request is its own visitor's, whatever came before it.
		visitor, err := visitorAddr(req.Header)
		if err != nil {
			http.Error(w, "400 Bad Request: "+err.Error(), http.StatusBadRequest)
			return
		}
		req.RemoteAddr = visitor
	}
	r.handler.ServeHTTP(w, req)
}

// visitorAddr is the visitor of a request that came without a PROXY
// header: the last X-Forwarded-For value, the one the cloud's HAProxy
// appended (it drops any the visitor sent), as IP:0 (HAProxy does not pass
// the visitor's port; only the IP goes on, in X-Forwarded-For).
func visitorAddr(h http.Header) (string, error) {
	values := h.Values("X-Forwarded-For")
	if len(values) == 0 {
		return "", errors.New("no X-Forwarded-For: the request did not come through the cloud")
	}
	last := values[len(values)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(last))
	if err != nil {
		return "", errors.New("the last X-Forwarded-For value is not an IP address")
	}
	return netip.AddrPortFrom(ip, 0).String(), nil
}

// serveHTTP hands the connection to the gateway's HTTP server and returns
// once that is done with it or ctx ends. With tlsConf, it first terminates
// TLS within HeaderTimeout.
func (g *Gateway) serveHTTP(ctx context.Context, c net.Conn, r *route, tlsConf *tls.Config, log *slog.Logger) {
	hc, err := newHTTPConn(c, r)
	if err != nil {
		log.Error("gateway: connection dropped", "err", err)
		return
	}
	defer hc.Close()
	if tlsConf == nil {
		g.handOver(ctx, hc, hc)
		return
	}
	tc := tls.Server(hc, tlsConf)
	hctx, cancel := context.WithTimeout(ctx, g.o.HeaderTimeout)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		log.Info("gateway: TLS handshake failed", "err", err)
		return
	}
	g.handOver(ctx, tc, hc)
}

// handOver gives c to the HTTP server and waits until hc is closed (the
// server is done with it, or it was hijacked for an upgrade and that ended)
// or ctx ends.
func (g *Gateway) handOver(ctx context.Context, c net.Conn, hc *httpConn) {
	if !g.listener.push(ctx, c) {
		return
	}
	select {
	case <-hc.closed:
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
