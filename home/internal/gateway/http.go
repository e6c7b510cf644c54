package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sync"
	"time"
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
	r.proxy.ServeHTTP(w, req)
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

// deadlineConn gives a connection without deadlines (an SSH channel) the
// read deadlines net/http relies on, for timeouts and to abort its
// background read. A pump goroutine reads ahead into two alternating
// buffers; Read waits for the pump, the deadline or Close. The pump is
// owned by the connection: it returns once the underlying Read fails,
// which Close causes.
type deadlineConn struct {
	net.Conn
	route *route

	chunks  chan []byte // from the pump; closed after readErr is set
	readErr error
	pending []byte // rest of the current chunk; used by Read only

	rdl       deadline
	closeOnce sync.Once
	closed    chan struct{}
}

const pumpBufferSize = 32 << 10

func newDeadlineConn(c net.Conn, r *route) *deadlineConn {
	dc := &deadlineConn{Conn: c, route: r, chunks: make(chan []byte), closed: make(chan struct{})}
	dc.rdl.cancel = make(chan struct{})
	go dc.pump()
	return dc
}

func (c *deadlineConn) pump() {
	bufs := [2][]byte{make([]byte, pumpBufferSize), make([]byte, pumpBufferSize)}
	for i := 0; ; i ^= 1 {
		n, err := c.Conn.Read(bufs[i])
		if n > 0 {
			// The chunk is handed over unbuffered: by the time the pump
			// reads into this buffer again, Read has consumed it.
			select {
			case c.chunks <- bufs[i][:n]:
			case <-c.closed:
				return
			}
		}
		if err != nil {
			c.readErr = err
			close(c.chunks)
			return
		}
	}
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		select {
		case <-c.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		default:
		}
		select {
		case chunk, ok := <-c.chunks:
			if !ok {
				return 0, c.readErr
			}
			c.pending = chunk
		case <-c.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *deadlineConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		err = c.Conn.Close()
	})
	return err
}

// SetDeadline sets the read deadline; writes have none (the SSH channel's
// flow control and the tunnel's keepalives bound them).
func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

func (c *deadlineConn) SetWriteDeadline(time.Time) error { return nil }

// deadline is a resettable timer whose channel closes when it passes (as
// in net.Pipe).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // never nil
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close cancel
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
