package sshd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/semaphore"

	"homeport.dev/cloud/internal/acceptloop"
	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/budget"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto/pooledio"
)

// Options configure the SSH endpoint.
type Options struct {
	HostKey ssh.Signer
	Homes   *homes.Service
	// AllowDirect reports whether home may open a direct-tcpip channel to
	// 127.0.0.1:port: only a private mapping of the same account qualifies.
	AllowDirect func(ctx context.Context, home store.Home, port int) bool
	// PublicPort reports whether home's tunnel port serves a public
	// mapping (HAProxy sends the first bytes); nil opens no spares.
	PublicPort func(ctx context.Context, home store.Home, port int) bool
	// SpareChannels is how many forwarded-tcpip channels each busy public
	// tunnel port keeps open ahead of its visitors (spare.go); 0: none.
	SpareChannels int
	// OwnerActive reports whether a user's account is active; a home of an
	// inactive account is refused at login (see accounts.go).
	OwnerActive func(ctx context.Context, userID uint64) (bool, error)
	// Edge is this node's edge name: only homes assigned to it may log in
	// ("" serves every home). EdgeWhere names an edge and its address for
	// the refusal (see edge.go).
	Edge      string
	EdgeWhere func(ctx context.Context, edge string) string
	// HeaderlessHTTP tells that public HTTP reaches homes without a PROXY
	// header (--reuse-home-connections): a home whose agent predates it
	// is flagged at login (AgentWarning), its HTTP mappings fail.
	HeaderlessHTTP bool
	Log            *slog.Logger
	Registry       prometheus.Registerer
	// Keepalive is the interval of server keepalives; a peer that answers
	// none for two intervals more is dropped (15 s -> gone within 45 s).
	Keepalive        time.Duration
	HandshakeTimeout time.Duration
	MaxConnsPerIP    int
	// MaxHandshakes bounds logins in progress from all addresses together
	// (each holds a descriptor for up to HandshakeTimeout); default 256.
	MaxHandshakes int
	// Budget holds what homes may make the endpoint hold (channels,
	// pending opens); nil means the defaults of package budget.
	Budget *budget.Ledger
	// ConnsPerHome bounds one home's live SSH connections (a reconnect
	// takes the old one over, so 2 suffice; default 4).
	ConnsPerHome int
	// RequestRate and RequestBurst bound one connection's global requests
	// (tcpip-forward, keepalives...) per second; defaults 10 and 64.
	RequestRate  float64
	RequestBurst int
	// OpenRate bounds the channel opens (direct-tcpip) one connection may
	// make per second (burst twice that); default 50.
	OpenRate float64
	// Audit records logins, logouts, takeovers and refused logins (each
	// rate-limited); nil records none.
	Audit *audit.Events
}

// Server is the embedded SSH endpoint. It accepts public-key logins of
// homes, remote forwards on the home's own tunnel ports (always bound to
// 127.0.0.1) and direct-tcpip to private mappings of the same account, and
// refuses everything else.
type Server struct {
	o       Options
	config  *ssh.ServerConfig
	metrics *metrics

	accept     acceptloop.Loop
	ports      *ports              // the homes' tunnel ports (ports.go)
	handshakes *semaphore.Weighted // logins in progress, all addresses together
	budget     *budget.Ledger
	refusal    *refusalLog

	mu       sync.Mutex
	sessions map[uint64]*session // by home ID: the newest live connection of each home
	perIP    map[string]int
	perHome  map[uint64]int // authenticated connections by home ID
	nextConn uint64
	stats    map[uint64]*homeStats // by home ID: every home met since start, until released (stats.go)

	changes atomic.Uint64 // logins and disconnects so far

	// afterAuth, when set (tests), runs between authentication and the
	// session's registration: where a key rotation used to slip through.
	afterAuth func()
}

// New returns an SSH endpoint.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Keepalive <= 0 {
		o.Keepalive = 15 * time.Second
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.MaxConnsPerIP <= 0 {
		o.MaxConnsPerIP = 32
	}
	if o.MaxHandshakes <= 0 {
		o.MaxHandshakes = 256
	}
	if o.AllowDirect == nil {
		o.AllowDirect = func(context.Context, store.Home, int) bool { return false }
	}
	if o.Budget == nil {
		o.Budget = budget.New(budget.Limits{})
	}
	if o.ConnsPerHome <= 0 {
		o.ConnsPerHome = 4
	}
	if o.RequestRate <= 0 {
		o.RequestRate = 10
	}
	if o.RequestBurst <= 0 {
		o.RequestBurst = 64
	}
	if o.OpenRate <= 0 {
		o.OpenRate = 50
	}
	s := &Server{o: o, budget: o.Budget, handshakes: semaphore.NewWeighted(int64(o.MaxHandshakes)), sessions: map[uint64]*session{}, perIP: map[string]int{}, perHome: map[uint64]int{}, stats: map[uint64]*homeStats{},
		metrics: newMetrics(o.Registry), refusal: newRefusalLog(o.Log, 10*time.Second)}
	s.accept = acceptloop.Loop{Name: "SSH endpoint", OnError: func(err error, retry time.Duration) {
		s.metrics.acceptErrors.Inc()
		s.refusal.log("", "accept", "SSH endpoint cannot accept connections, retrying", "err", err, "retry_in", retry)
	}}
	s.ports = newPorts(func(err error, retry time.Duration) {
		s.metrics.acceptErrors.Inc()
		s.refusal.log("", "accept_ports", "tunnel ports cannot accept connections, retrying", "err", err, "retry_in", retry)
	})
	s.config = &ssh.ServerConfig{
		PublicKeyCallback: s.authenticate,
		MaxAuthTries:      3,
		ServerVersion:     "SSH-2.0-homeport",
	}
	s.config.AddHostKey(o.HostKey)
	return s
}

const (
	extHomeID      = "homeport-home-id"
	extFingerprint = "homeport-key-fingerprint"
	extConnID      = "homeport-conn-id" // the login's number: a later login is newer
)

// authenticate accepts a key only when it identifies a home and the login
// name is that home's slug.
func (s *Server) authenticate(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := s.o.Homes.ByFingerprint(ctx, ssh.FingerprintSHA256(key))
	if err != nil {
		s.o.Log.Info("ssh login refused: unknown key", "remote", meta.RemoteAddr().String(), "user", meta.User())
		s.auditRefusal(meta, store.Home{}, "unknown key")
		return nil, errors.New("unknown key")
	}
	if meta.User() != h.Slug {
		s.o.Log.Info("ssh login refused: wrong user for key", "remote", meta.RemoteAddr().String(), "user", meta.User(), "home", h.Slug)
		s.auditRefusal(meta, h, "wrong user for the key")
		return nil, errors.New("wrong user")
	}
	if err := s.ownerActive(ctx, meta, h); err != nil {
		s.auditRefusal(meta, h, err.Error())
		return nil, err
	}
	if err := s.ownEdge(ctx, meta, h); err != nil {
		return nil, err
	}
	if n := s.connsOf(h.ID); n >= s.o.ConnsPerHome {
		s.refuse(h.Slug, "home_conns", "ssh login refused: the home has too many connections", "conns", n)
		s.auditRefusal(meta, h, "too many connections for this home")
		return nil, errors.New("too many connections for this home")
	}
	s.mu.Lock()
	s.nextConn++
	connID := s.nextConn
	s.mu.Unlock()
	return &ssh.Permissions{Extensions: map[string]string{
		extHomeID:      strconv.FormatUint(h.ID, 10),
		extFingerprint: ssh.FingerprintSHA256(key),
		extConnID:      strconv.FormatUint(connID, 10),
	}}, nil
}

func (s *Server) connsOf(homeID uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perHome[homeID]
}

// refuse counts a refusal by reason and logs it, at most once per home and
// reason every few seconds, so a flood cannot flood the log too.
func (s *Server) refuse(home, reason, msg string, args ...any) {
	s.metrics.refusals.WithLabelValues(reason).Inc()
	s.refusal.log(home, reason, msg, append([]any{"home", home, "reason", reason}, args...)...)
}

// Check reports whether the endpoint accepts connections now (readiness).
func (s *Server) Check(ctx context.Context) error { return s.accept.Check(ctx) }

// Serve accepts connections on ln until ctx ends (nil) or the listener
// fails for good (the error). Running out of file descriptors is not the
// end: accepting resumes once some are free.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer func() {
		s.closeAll()
		wg.Wait()
		s.ports.stop()
	}()
	return s.accept.Serve(ctx, ln, func(c net.Conn) {
		ip := remoteIP(c)
		if !s.admit(ip) {
			s.refuse("", "ip_conns", "ssh connection refused: too many from one address", "remote", ip)
			c.Close()
			return
		}
		wg.Add(1)
		defer wg.Done()
		// The address's budget holds logins in progress only: homes behind
		// one carrier-grade NAT must all be able to stay connected. Once
		// logged in, a connection counts against its home (ConnsPerHome).
		released := false
		loggedIn := func() {
			if !released {
				released = true
				s.release(ip)
			}
		}
		defer loggedIn()
		s.handle(ctx, c, loggedIn)
	})
}

// remoteIP is the client's address as the per-address limit counts it: an
// IPv4 address, or an IPv6 /64 (one subscriber's usual share: counting
// single IPv6 addresses would give an attacker billions of budgets).
func remoteIP(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() != nil {
		return host
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

func (s *Server) admit(ip string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip] >= s.o.MaxConnsPerIP {
		return false
	}
	s.perIP[ip]++
	return true
}

func (s *Server) release(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// handle runs one connection: handshake under a deadline (loggedIn is
// called once it succeeded), takeover of the home's previous connection,
// then requests and channels until it ends.
func (s *Server) handle(ctx context.Context, c net.Conn, loggedIn func()) {
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAlive(true)
		tc.SetKeepAlivePeriod(s.o.Keepalive)
	}
	// No goroutine and no buffer of its own under the transport: an idle
	// home must cost little (issue 16: batchconn held a 256 KiB read buffer
	// and a flusher goroutine per connection). Reads take a pooled buffer
	// only while data is there (proto/pooledio).
	if !s.handshakes.TryAcquire(1) {
		s.refuse("", "handshakes", "ssh connection refused: too many logins in progress", "remote", c.RemoteAddr().String())
		return
	}
	c.SetDeadline(time.Now().Add(s.o.HandshakeTimeout))
	conn, chans, reqs, err := ssh.NewServerConn(pooledio.NewConn(c, pooledio.SSHReadSize), s.config)
	s.handshakes.Release(1)
	if err != nil {
		s.o.Log.Debug("ssh handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	c.SetDeadline(time.Time{})
	loggedIn()
	id, _ := strconv.ParseUint(conn.Permissions.Extensions[extHomeID], 10, 64)
	fingerprint := conn.Permissions.Extensions[extFingerprint]
	connID, _ := strconv.ParseUint(conn.Permissions.Extensions[extConnID], 10, 64)
	if s.afterAuth != nil {
		s.afterAuth()
	}
	s.mu.Lock()
	s.perHome[id]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.perHome[id]--; s.perHome[id] <= 0 {
			delete(s.perHome, id)
		}
		s.mu.Unlock()
	}()
	lookupCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	h, err := s.o.Homes.ByID(lookupCtx, id)
	cancel()
	if err != nil {
		conn.Close()
		return
	}
	s.mu.Lock()
	st := s.statsOf(h)
	s.mu.Unlock()
	sess := newSession(s, h, fingerprint, connID, conn, st)
	if !s.takeOver(sess) {
		return
	}
	// The session is bound to the key it logged in with: a rotation that
	// committed between the login and the registration above is caught
	// here, any later one by Revalidate.
	if !s.stillValid(ctx, sess) {
		s.drop(sess)
		return
	}
	s.metrics.connects.Inc()
	s.mu.Lock()
	st.addr, st.version, st.lastSeen = c.RemoteAddr().String(), string(conn.ClientVersion()), time.Now()
	st.warning = s.agentWarning(st.version)
	s.mu.Unlock()
	s.changes.Add(1)
	s.o.Log.Info("home connected", "home", h.Slug, "remote", c.RemoteAddr().String())
	if st.warning != "" {
		s.o.Log.Warn("home agent too old for this cloud", "home", h.Slug, "agent", st.version, "problem", st.warning)
	}
	s.auditConn("ssh.connect", h, c.RemoteAddr(), map[string]any{"agent": string(conn.ClientVersion())})
	defer func() {
		s.drop(sess)
		s.seen(st)
		s.changes.Add(1)
		s.metrics.disconnects.Inc()
		s.o.Log.Info("home disconnected", "home", h.Slug, "remote", c.RemoteAddr().String())
		s.auditConn("ssh.disconnect", h, c.RemoteAddr(), nil)
	}()
	// This goroutine and x/crypto's three are all an idle home costs: the
	// keepalive is a timer, requests and channels share one loop.
	sess.keepalive(s.o.Keepalive)
	sess.serve(ctx, chans, reqs)
}

// takeOver registers sess as its home's connection, closing the previous one
// first so its listeners free their ports before the new forwards ask; the
// previous one is told which connection replaced it (endReplaced). A
// login older than the registered one (it authenticated first but got
// here last) does not take over: it is told the same about the registered
// one, closed, not registered, and takeOver reports false.
func (s *Server) takeOver(sess *session) bool {
	s.mu.Lock()
	old := s.sessions[sess.home.ID]
	if old != nil && old.id > sess.id {
		s.mu.Unlock()
		s.o.Log.Info("closing an older connection of the home that logged in before its current one", "home", sess.home.Slug)
		s.metrics.takeovers.Inc()
		<-sess.endReplaced(old)
		return false
	}
	s.sessions[sess.home.ID] = sess
	s.mu.Unlock()
	if old != nil {
		s.o.Log.Info("home reconnected: closing its previous connection", "home", sess.home.Slug, "remote", sess.conn.RemoteAddr().String(), "previous", old.conn.RemoteAddr().String())
		s.metrics.takeovers.Inc()
		s.auditConn("ssh.takeover", sess.home, sess.conn.RemoteAddr(), map[string]any{"previous": old.conn.RemoteAddr().String()})
		old.endReplaced(sess)
	}
	s.metrics.homes.Set(float64(s.count()))
	return true
}

func (s *Server) drop(sess *session) {
	sess.close()
	s.mu.Lock()
	if s.sessions[sess.home.ID] == sess {
		delete(s.sessions, sess.home.ID)
	}
	s.mu.Unlock()
	s.metrics.homes.Set(float64(s.count()))
}

func (s *Server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func (s *Server) closeAll() {
	s.mu.Lock()
	all := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.close()
	}
}

// Revalidate closes a home's live connection when the home is gone or its
// key changed (release, key rotation), and forgets a released home's
// facts and counters. Called after every home change.
func (s *Server) Revalidate(ctx context.Context, homeID uint64) {
	s.mu.Lock()
	sess := s.sessions[homeID]
	_, known := s.stats[homeID]
	s.mu.Unlock()
	if sess != nil && !s.stillValid(ctx, sess) {
		sess.close()
	}
	if known {
		s.forgetIfGone(ctx, homeID)
	}
}

// stillValid reports whether sess's home still exists with the key the
// session authenticated with.
func (s *Server) stillValid(ctx context.Context, sess *session) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h, err := s.o.Homes.ByID(ctx, sess.home.ID)
	if err != nil || h.KeyFingerprint != sess.fingerprint {
		s.o.Log.Info("closing home connection: home released or key changed", "home", sess.home.Slug)
		return false
	}
	if !s.servedHere(h) {
		s.o.Log.Info("closing home connection: the home moved to another edge", "home", sess.home.Slug, "edge", h.Edge)
		return false
	}
	return true
}

// ForwardUp reports whether a home's connection currently listens on port.
func (s *Server) ForwardUp(homeID uint64, port int) bool {
	s.mu.Lock()
	sess := s.sessions[homeID]
	s.mu.Unlock()
	return sess != nil && sess.listening(port)
}

// Connected reports whether a home has a live connection.
func (s *Server) Connected(homeID uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[homeID] != nil
}

// visitorReadSize is the most one read from a visitor takes (pipe): up to
// 64 KiB at once took uploads from 83 to 67 system calls per MB at the
// cloud; 128 KiB fills one SSH packet to the agent (channelMaxPacket in
// third_party's x/crypto).
const visitorReadSize = 128 << 10

// pipe copies both ways until both directions end, half-closing the side
// whose direction finishes first, and returns the bytes moved (a->b,
// b->a). As they move, they are added to the counters countAB and countBA.
// The direction that finishes last closes both sides without half-closing
// first: for the channel an EOF right before its CLOSE is one SSH packet
// (a write here, a read and a wake-up at the home) that says nothing more.
//
// The b->a direction runs in the caller's goroutine (one goroutine less
// per visitor) and keeps b's WriterTo (a channel hands its packets over
// uncopied). a->b reads up to 64 KiB at once into a pooled buffer taken
// only while bytes are there (pooledio.Copy): an idle visitor holds no copy
// buffer (a 32 KiB one for its whole life before).
func pipe(a, b io.ReadWriteCloser, countAB, countBA *atomic.Uint64) (int64, int64) {
	var ab int64
	var finished atomic.Int32 // directions done
	done := make(chan struct{})
	go func() {
		defer close(done)
		ab, _ = pooledio.Copy(counting{b, countAB}, a, visitorReadSize)
		if finished.Add(1) == 1 {
			closeWrite(b)
		}
	}()
	ba, _ := io.Copy(counting{a, countBA}, b)
	if finished.Add(1) == 1 {
		closeWrite(a)
	}
	<-done
	a.Close()
	b.Close()
	return ab, ba
}

func closeWrite(c io.Closer) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

func hostPort(host string, port uint32) string {
	return net.JoinHostPort(host, fmt.Sprint(port))
}
