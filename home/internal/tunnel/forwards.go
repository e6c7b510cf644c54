package tunnel

// The forwards of a supervisor: the wanted set (SetForwards), its requests
// and cancellations on the live connection (syncForwards), and the
// forwarded channels handed to each port's handler (dispatch).

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"
)

// Forward asks the cloud to forward one tunnel port of the home's block to
// this supervisor, which hands each forwarded connection to Handler.
type Forward struct {
	TunnelPort int
	// Handler serves one forwarded connection and returns when done; the
	// supervisor closes conn afterwards. ctx ends when the supervisor stops,
	// the SSH connection is lost, or the cloud closes this channel, so a
	// handler that also holds a local connection must close it then.
	Handler func(ctx context.Context, conn net.Conn)
}

// forward is the state of one wanted forward.
type forward struct {
	port    int
	handler func(context.Context, net.Conn)
	asked   uint64 // generation of the connection it was requested on; 0 never
	up      bool
	since   time.Time
	err     error
}

// SetForwards replaces the set of forwards. On a live connection, new ports
// are requested and dropped ports cancelled at once; a port kept from the
// previous set keeps its forward and only changes handler. Ports must be
// 1..65535 and distinct; on error nothing changes.
func (s *Supervisor) SetForwards(fs []Forward) error {
	seen := map[int]bool{}
	for _, f := range fs {
		switch {
		case f.TunnelPort < 1 || f.TunnelPort > 65535:
			return fmt.Errorf("tunnel: forward port %d is not in 1..65535", f.TunnelPort)
		case f.Handler == nil:
			return fmt.Errorf("tunnel: forward of port %d has no handler", f.TunnelPort)
		case seen[f.TunnelPort]:
			return fmt.Errorf("tunnel: port %d is forwarded twice", f.TunnelPort)
		}
		seen[f.TunnelPort] = true
	}
	now := time.Now()
	s.mu.Lock()
	next := make(map[int]*forward, len(fs))
	for _, f := range fs {
		if old := s.forwards[f.TunnelPort]; old != nil {
			old.handler = f.Handler
			next[f.TunnelPort] = old
			continue
		}
		next[f.TunnelPort] = &forward{port: f.TunnelPort, handler: f.Handler, since: now}
	}
	for port, old := range s.forwards {
		if next[port] == nil && s.live != nil && old.asked == s.gen && old.up {
			s.cancels[port] = s.gen
		}
	}
	s.forwards = next
	s.notifyLocked()
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// syncForwards requests the wanted forwards not yet asked on connection gen
// and cancels the ones no longer wanted, until nothing is left to do.
func (s *Supervisor) syncForwards(client *ssh.Client, gen uint64) {
	for {
		s.mu.Lock()
		var cancel, ask []int
		for port, g := range s.cancels {
			if g == gen {
				cancel = append(cancel, port)
			}
		}
		clear(s.cancels)
		for port, f := range s.forwards {
			if f.asked != gen {
				f.asked = gen
				ask = append(ask, port)
			}
		}
		s.mu.Unlock()
		if len(cancel) == 0 && len(ask) == 0 {
			return
		}
		slices.Sort(ask)
		for _, port := range cancel {
			ok, _, err := client.SendRequest("cancel-tcpip-forward", true, ssh.Marshal(forwardRequest{forwardBindAddr, uint32(port)}))
			if err != nil {
				return // connection lost: serve notices
			}
			s.log.Info("tunnel: forward cancelled", "port", port, "ok", ok)
		}
		for _, port := range ask {
			ok, _, err := client.SendRequest("tcpip-forward", true, ssh.Marshal(forwardRequest{forwardBindAddr, uint32(port)}))
			if err != nil {
				return
			}
			s.forwardResult(gen, port, ok)
		}
	}
}

// forwardResult records the cloud's answer to a forward request.
func (s *Supervisor) forwardResult(gen uint64, port int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.forwards[port]
	if f == nil || f.asked != gen {
		// Dropped (or dropped and re-added) while the request was in
		// flight: the cloud listens for nothing we want.
		if ok {
			s.cancels[port] = gen
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
		return
	}
	if ok {
		f.err = nil
		s.log.Info("tunnel: forward up", "port", port)
	} else {
		f.err = fmt.Errorf("the cloud refused to forward tunnel port %d: it is not one of this home's tunnel ports, or the cloud cannot listen on it", port)
		s.log.Warn("tunnel: forward refused", "port", port, "err", f.err)
	}
	if f.up != ok {
		f.up, f.since = ok, time.Now()
	}
	s.notifyLocked()
}

// dispatch hands each forwarded channel to its port's handler until the
// connection ends.
func (s *Supervisor) dispatch(ctx context.Context, chans <-chan ssh.NewChannel) {
	for nc := range chans {
		var p forwardedPayload
		if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
			nc.Reject(ssh.ConnectionFailed, "malformed forwarded-tcpip request")
			continue
		}
		f, h := s.handler(int(p.Port))
		if h == nil {
			nc.Reject(ssh.Prohibited, fmt.Sprintf("no forward for port %d on this home", p.Port))
			continue
		}
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			s.handle(ctx, nc, p, f, h)
		}()
	}
}

// handler returns the forward of port and its handler, nil if none.
func (s *Supervisor) handler(port int) (*forward, func(context.Context, net.Conn)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.forwards[port]; f != nil {
		return f, f.handler
	}
	return nil, nil
}

// wanted reports whether f is still the forward of its port.
func (s *Supervisor) wanted(f *forward) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forwards[f.port] == f
}

// handle accepts one forwarded channel and runs the handler on it. The
// handler's context ends with the connection or when the cloud closes the
// channel (its requests channel closes then).
func (s *Supervisor) handle(ctx context.Context, nc ssh.NewChannel, p forwardedPayload, f *forward, h func(context.Context, net.Conn)) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reqsDone := make(chan struct{})
	go func() {
		defer close(reqsDone)
		ssh.DiscardRequests(reqs)
		cancel()
	}()
	conn := &channelConn{Channel: ch, local: tcpAddr(p.Addr, p.Port), remote: tcpAddr(p.OriginAddr, p.OriginPort),
		wanted: func() bool { return s.wanted(f) }}
	h(ctx, conn)
	conn.Close()
	<-reqsDone
}
