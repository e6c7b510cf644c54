package sshd

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"

	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// session is one home's live SSH connection and the listeners it owns.
type session struct {
	srv         *Server
	home        store.Home
	fingerprint string // of the key this connection authenticated with
	id          uint64 // the connection's number, for its channel budget
	conn        *ssh.ServerConn
	requests    *rate.Limiter // global requests
	opens       *rate.Limiter // channel opens by the home (direct-tcpip)
	since       time.Time     // when the connection logged in
	stats       *homeStats    // the home's counters and facts (stats.go)

	mu        sync.Mutex
	listeners map[int]*portListener // by tunnel port
	spares    map[int]*spares       // by tunnel port, when Options.SpareChannels > 0
	ping      *time.Timer           // the next keepalive
	closed    bool
	done      chan struct{}
}

func newSession(s *Server, h store.Home, fingerprint string, id uint64, conn *ssh.ServerConn, st *homeStats) *session {
	return &session{srv: s, home: h, fingerprint: fingerprint, id: id, conn: conn, since: time.Now(), stats: st,
		requests:  rate.NewLimiter(rate.Limit(s.o.RequestRate), s.o.RequestBurst),
		opens:     rate.NewLimiter(rate.Limit(s.o.OpenRate), 2*int(s.o.OpenRate)),
		listeners: map[int]*portListener{}, spares: map[int]*spares{}, done: make(chan struct{})}
}

// close ends the connection and frees every port it listened on. It is
// idempotent and returns only once the listeners are closed.
func (s *session) close() {
	if s.closeListeners() {
		s.conn.Close()
	}
}

// closeListeners marks the session closed and frees every port it listened
// on; it reports false if the session was closed already.
func (s *session) closeListeners() bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.closed = true
	if s.ping != nil {
		s.ping.Stop()
	}
	ls, sp := s.listeners, s.spares
	s.listeners, s.spares = map[int]*portListener{}, map[int]*spares{}
	close(s.done)
	s.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for _, p := range sp {
		p.close()
	}
	s.srv.metrics.forwards.Sub(float64(len(ls)))
	return true
}

// replacedGrace bounds how long a replaced connection stays open for the
// home to acknowledge the notice (an agent that does not know the request
// refuses it at once; a dead peer never answers).
const replacedGrace = 2 * time.Second

// endReplaced ends s because newer, a later login of the same home, is the
// home's connection now. The ports are freed at once (newer asks for the
// same ones next); then the home is told who replaced it and when
// (proto.ReplacedRequest), so that it stops reconnecting instead of taking
// the tunnel back, and the connection closes once the home acknowledged or
// after replacedGrace. The returned channel is closed when it is closed.
func (s *session) endReplaced(newer *session) <-chan struct{} {
	done := make(chan struct{})
	if !s.closeListeners() {
		close(done)
		return done
	}
	notice, _ := json.Marshal(proto.Replaced{By: newer.conn.RemoteAddr().String(), Since: newer.since.UTC()})
	go func() {
		defer close(done)
		acked := make(chan struct{})
		go func() {
			defer close(acked)
			s.conn.SendRequest(proto.ReplacedRequest, true, notice)
		}()
		t := time.NewTimer(replacedGrace)
		defer t.Stop()
		select {
		case <-acked:
		case <-t.C:
		}
		s.conn.Close() // also ends SendRequest if still waiting
	}()
	return done
}

// forwards is how many tunnel ports the connection listens on.
func (s *session) forwards() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.listeners)
}

func (s *session) listening(port int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listeners[port] != nil
}

// keepalive sends a keepalive every interval and closes the connection when
// a reply does not come within two more intervals. It is a timer, not a
// goroutine: between keepalives an idle home costs none.
func (s *session) keepalive(interval time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.ping = time.AfterFunc(interval, func() { s.keepaliveOnce(interval) })
	}
}

// keepaliveOnce runs in the timer's goroutine: one keepalive and its reply,
// then the timer is set for the next one.
func (s *session) keepaliveOnce(interval time.Duration) {
	silent := time.AfterFunc(2*interval, func() {
		s.srv.o.Log.Info("home silent: dropping its connection", "home", s.home.Slug)
		s.close()
	})
	_, _, err := s.conn.SendRequest("keepalive@openssh.com", true, nil)
	if !silent.Stop() {
		return // closed for silence
	}
	if err != nil {
		s.close()
		return
	}
	s.srv.seen(s.stats)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.ping.Reset(interval)
	}
}

type forwardRequest struct {
	Addr string
	Port uint32
}

// serve answers the connection's global requests and channel opens, in
// one goroutine, until the connection ends.
func (s *session) serve(ctx context.Context, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) {
	for chans != nil || reqs != nil {
		select {
		case req, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			s.request(req)
		case nc, ok := <-chans:
			if !ok {
				chans = nil
				continue
			}
			s.channel(ctx, nc)
		}
	}
}

// request answers a global request that wants a reply; beyond the
// connection's request rate, requests are refused unread.
func (s *session) request(req *ssh.Request) {
	if !s.requests.Allow() {
		s.srv.refuse(s.home.Slug, "request_rate", "global request refused: over the request rate", "type", req.Type)
		req.Reply(false, nil)
		return
	}
	switch req.Type {
	case "tcpip-forward":
		err := s.forward(req.Payload)
		if err != nil {
			s.srv.o.Log.Info("forward refused", "home", s.home.Slug, "err", err)
		}
		req.Reply(err == nil, nil)
	case "cancel-tcpip-forward":
		f, err := parseForward(req.Payload)
		ok := err == nil && s.cancel(int(f.Port))
		req.Reply(ok, nil)
	default:
		// streamlocal-forward@openssh.com, no-more-sessions@openssh.com, ...
		req.Reply(false, nil)
	}
}

// forward listens on 127.0.0.1:port for a port of the home's own block,
// whatever address the client asked for.
func (s *session) forward(payload []byte) error {
	f, err := parseForward(payload)
	if err != nil {
		return err
	}
	port := int(f.Port)
	if block := s.srv.o.Homes.Layout().TunnelPorts(s.home.Slot); !block.Contains(port) {
		return errForbiddenPort{port: port, block: block.String()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	if s.listeners[port] != nil {
		return nil // asked twice: already forwarding
	}
	var sp *spares
	if n := s.srv.o.SpareChannels; n > 0 && s.srv.o.PublicPort != nil && strings.HasPrefix(string(s.conn.ClientVersion()), headerAgent) {
		sp = newSpares(s, f, n)
	}
	ln, err := s.srv.ports.listen(port, func(c net.Conn) { s.visitor(f, sp, c) })
	if err != nil {
		return err
	}
	s.listeners[port] = ln
	if sp != nil {
		s.spares[port] = sp
	}
	s.srv.metrics.forwards.Inc()
	return nil
}

type errForbiddenPort struct {
	port  int
	block string
}

func (e errForbiddenPort) Error() string {
	return "port " + itoa(e.port) + " is not in this home's tunnel ports " + e.block
}

func (s *session) cancel(port int) bool {
	s.mu.Lock()
	ln, sp := s.listeners[port], s.spares[port]
	delete(s.listeners, port)
	delete(s.spares, port)
	s.mu.Unlock()
	if sp != nil {
		sp.close()
	}
	if ln == nil {
		return false
	}
	s.srv.metrics.forwards.Dec()
	return ln.Close() == nil
}

type forwardedPayload struct {
	Addr       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// visitor hands a connection to the home's tunnel port to the home over a
// forwarded-tcpip channel naming the address exactly as the client asked:
// a spare one if the port has one (sp may be nil; spare.go). A visitor
// over the home's channel budget is hung up on at once.
func (s *session) visitor(f forwardRequest, sp *spares, c net.Conn) {
	if sp != nil {
		if spare, ok := sp.take(); ok {
			s.srv.metrics.viaSpare.Inc()
			s.carry(spare.ch, c)
			spare.release()
			return
		}
	}
	releaseChannel, err := s.srv.budget.Channel(s.home.ID, s.id)
	if err != nil {
		s.srv.refuse(s.home.Slug, reasonOf(err), "visitor connection refused", "port", f.Port, "err", err)
		c.Close()
		return
	}
	defer releaseChannel()
	// The open waits for the home's answer: the channel budget bounds
	// how many visitors can wait for a home that never answers.
	origin, _ := c.RemoteAddr().(*net.TCPAddr)
	if origin == nil {
		origin = &net.TCPAddr{IP: net.IPv4zero}
	}
	ch, reqs, err := s.conn.OpenChannel("forwarded-tcpip", ssh.Marshal(forwardedPayload{
		Addr: f.Addr, Port: f.Port, OriginAddr: origin.IP.String(), OriginPort: uint32(origin.Port),
	}))
	if err != nil {
		c.Close()
		return
	}
	s.srv.metrics.viaOpen.Inc()
	go ssh.DiscardRequests(reqs)
	s.carry(ch, c)
}

// carry pipes an open channel and its local connection until both ends
// are done, counting the channel and its bytes (in = towards the home).
// The channel's requests are the caller's to discard.
func (s *session) carry(ch ssh.Channel, local net.Conn) {
	s.srv.metrics.channels.Inc()
	defer s.srv.metrics.channels.Dec()
	in, out := pipe(local, ch, &s.stats.in, &s.stats.out)
	s.srv.metrics.bytes(s.home.Slug, in, out)
}

type directPayload struct {
	Host       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// channel accepts direct-tcpip to private mappings of the same account and
// refuses sessions (shell, exec, pty, subsystems) and everything else.
func (s *session) channel(ctx context.Context, nc ssh.NewChannel) {
	if nc.ChannelType() != "direct-tcpip" {
		nc.Reject(ssh.Prohibited, "homeport allows only port forwarding; no shell, exec or other channels")
		return
	}
	d, err := parseDirect(nc.ExtraData())
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	// Each open that passes costs a database lookup: their rate is
	// bounded before anything else.
	if !s.opens.Allow() {
		s.srv.refuse(s.home.Slug, "open_rate", "channel refused: over the channel-open rate")
		nc.Reject(ssh.ResourceShortage, "too many channel opens per second; slow down")
		return
	}
	// Budgets first: the flood this guards against is thousands of
	// opens to a mapping that is allowed.
	releaseChannel, err := s.srv.budget.Channel(s.home.ID, s.id)
	if err != nil {
		s.srv.refuse(s.home.Slug, reasonOf(err), "channel refused", "err", err)
		nc.Reject(ssh.ResourceShortage, err.Error())
		return
	}
	releasePending, err := s.srv.budget.Pending(s.home.ID)
	if err != nil {
		releaseChannel()
		s.srv.refuse(s.home.Slug, reasonOf(err), "channel refused", "err", err)
		nc.Reject(ssh.ResourceShortage, err.Error())
		return
	}
	if (d.Host != "127.0.0.1" && d.Host != "localhost") || !s.srv.o.AllowDirect(ctx, s.home, int(d.Port)) {
		releasePending()
		releaseChannel()
		nc.Reject(ssh.Prohibited, "only private mappings of your account can be reached")
		return
	}
	go func() {
		defer releaseChannel()
		target, err := net.DialTimeout("tcp", hostPort("127.0.0.1", d.Port), 5*time.Second)
		if err != nil {
			releasePending()
			nc.Reject(ssh.ConnectionFailed, "the private mapping's home is not connected")
			return
		}
		ch, reqs, err := nc.Accept()
		releasePending()
		if err != nil {
			target.Close()
			return
		}
		go ssh.DiscardRequests(reqs)
		s.carry(ch, target)
	}()
}
