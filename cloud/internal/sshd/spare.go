package sshd

import (
	"context"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// spareIdle is how long spare channels outlive a tunnel port's last
// visitor. Well under the agent's PROXY-header timeout (10 s, gateway's
// DefaultHeaderTimeout), so that a spare is withdrawn by the cloud before
// the home would give up on it.
const spareIdle = 2 * time.Second

// spareRecheck is how often a busy port's mapping is looked up again: a
// mapping made private keeps its tunnel port.
const spareRecheck = 30 * time.Second

// spares keeps forwarded-tcpip channels to the home opened and confirmed
// ahead of the visitors of one tunnel port, so that a visitor does not
// wait for the open's round trip to the home (the largest part of a new
// connection's setup after HAProxy's own: issue 17). A port has spares
// only while visitors come: the first visitor after a quiet spell opens
// its channel as before and starts the spares; each visitor that takes
// one opens a replacement in the background; spareIdle after the last
// visitor the spares are closed. Only homeport agents get them (session.
// forward checks the SSH version), and only on ports of public mappings:
// HAProxy speaks first there (a PROXY header, or plain HTTP), and the
// agent waits for those bytes before it dials the local service. For a
// private mapping the agent dials as soon as the channel opens, and so
// does a plain OpenSSH client for any mapping: a spare would hold an idle
// connection to the service. Each spare holds the home's channel budget
// like the visitor it is waiting for.
type spares struct {
	s   *session
	f   forwardRequest
	max int

	mu      sync.Mutex
	idle    []spare
	opening int       // opens in flight
	used    time.Time // the last visitor
	public  bool      // the port's mapping is public, as of checked
	checked time.Time // zero: never looked up
	armed   bool      // retire is scheduled
	timer   *time.Timer
	closed  bool
}

// spare is one open, confirmed, unused channel.
type spare struct {
	ch      ssh.Channel
	release func() // its channel budget
}

func newSpares(s *session, f forwardRequest, max int) *spares {
	return &spares{s: s, f: f, max: max}
}

// take returns an idle spare, if there is one, and tops the spares up in
// the background: the caller is a visitor.
func (p *spares) take() (spare, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used = time.Now()
	var sp spare
	n := len(p.idle)
	if n > 0 {
		sp, p.idle = p.idle[n-1], p.idle[:n-1]
		p.s.srv.metrics.spares.Dec()
	}
	for !p.closed && !p.knownPrivateLocked() && len(p.idle)+p.opening < p.max {
		p.opening++
		go p.open()
	}
	return sp, n > 0
}

// knownPrivateLocked reports that a recent lookup found no public mapping
// on the port: its visitors start no opens that would only find that out
// again. Call with p.mu held.
func (p *spares) knownPrivateLocked() bool {
	return !p.public && p.fresh()
}

// fresh reports whether the last lookup of the port's mapping is recent
// enough to trust. Call with p.mu held.
func (p *spares) fresh() bool {
	return !p.checked.IsZero() && time.Since(p.checked) < spareRecheck
}

// open opens one spare, unless the port is not a public mapping's or the
// home's channel budget is spent (a spare is never worth a refusal).
func (p *spares) open() {
	ch, release := p.openChannel()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opening--
	if ch == nil {
		return
	}
	if p.closed {
		ch.Close()
		release()
		return
	}
	p.idle = append(p.idle, spare{ch: ch, release: release})
	p.s.srv.metrics.spares.Inc()
	if !p.armed {
		p.armed = true
		if p.timer == nil {
			p.timer = time.AfterFunc(spareIdle, p.retire)
		} else {
			p.timer.Reset(spareIdle)
		}
	}
}

// openChannel opens a forwarded-tcpip channel for a visitor not yet
// there, holding a channel budget; nil when no spare should be opened.
func (p *spares) openChannel() (ssh.Channel, func()) {
	if !p.isPublic() {
		return nil, nil
	}
	release, err := p.s.srv.budget.Channel(p.s.home.ID, p.s.id)
	if err != nil {
		return nil, nil
	}
	// The visitor is not known yet: the origin is the tunnel port itself
	// (every visitor of a tunnel port connects from 127.0.0.1: HAProxy, or
	// the cloud for direct-tcpip; clients refuse port 0); the agent names
	// the visitor from the PROXY header.
	ch, reqs, err := p.s.conn.OpenChannel("forwarded-tcpip", ssh.Marshal(forwardedPayload{
		Addr: p.f.Addr, Port: p.f.Port, OriginAddr: "127.0.0.1", OriginPort: p.f.Port,
	}))
	if err != nil {
		release()
		return nil, nil
	}
	go func() {
		// The requests end when the channel does: a spare the home
		// closed (its agent restarted the forward) is dropped at once.
		ssh.DiscardRequests(reqs)
		p.drop(ch)
	}()
	return ch, release
}

// isPublic looks the port's mapping up at the first spare and every
// spareRecheck while the port stays busy.
func (p *spares) isPublic() bool {
	p.mu.Lock()
	fresh, public := p.fresh(), p.public
	p.mu.Unlock()
	if fresh {
		return public
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	public = p.s.srv.o.PublicPort(ctx, p.s.home, int(p.f.Port))
	p.mu.Lock()
	p.public, p.checked = public, time.Now()
	p.mu.Unlock()
	return public
}

// drop forgets a spare whose channel closed while it was idle.
func (p *spares) drop(ch ssh.Channel) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, sp := range p.idle {
		if sp.ch == ch {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			p.s.srv.metrics.spares.Dec()
			sp.release()
			return
		}
	}
}

// retire closes the idle spares once spareIdle has passed since the last
// visitor, or waits for the rest of it.
func (p *spares) retire() {
	p.mu.Lock()
	p.armed = false
	if len(p.idle) == 0 {
		p.mu.Unlock()
		return
	}
	if wait := spareIdle - time.Since(p.used); wait > 0 && !p.closed {
		p.armed = true
		p.timer.Reset(wait)
		p.mu.Unlock()
		return
	}
	idle := p.takeAllLocked()
	p.mu.Unlock()
	closeSpares(idle)
}

// close closes the idle spares and opens no more: the forward ended.
func (p *spares) close() {
	p.mu.Lock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	idle := p.takeAllLocked()
	p.mu.Unlock()
	closeSpares(idle)
}

func (p *spares) takeAllLocked() []spare {
	idle := p.idle
	p.idle = nil
	p.s.srv.metrics.spares.Sub(float64(len(idle)))
	return idle
}

func closeSpares(idle []spare) {
	for _, sp := range idle {
		sp.ch.Close()
		sp.release()
	}
}
