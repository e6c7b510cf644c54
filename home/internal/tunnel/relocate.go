package tunnel

import (
	"bytes"
	"context"
	"errors"

	"golang.org/x/crypto/ssh"
)

// When several cloud nodes share one database, a home is served by one edge
// and an admin may move it to another. The edge it left closes its
// connection and refuses its next login (with a banner naming the right
// edge); the supervisor then asks Config.Relocate for the endpoint the
// cloud's API names now and, when it is another, reconnects there at once
// instead of backing off.

// Endpoint is an SSH endpoint and its pinned host key.
type Endpoint struct {
	Addr    string
	HostKey ssh.PublicKey
}

// loginRefused marks a handshake the cloud answered by refusing the home's
// key (handshakeError).
type loginRefused struct{ err error }

func (e loginRefused) Error() string { return e.err.Error() }
func (e loginRefused) Unwrap() error { return e.err }

// relocate asks where the home is served after a refused login and
// switches to that endpoint; it reports whether it switched.
func (s *Supervisor) relocate(ctx context.Context, err error) bool {
	if s.cfg.Relocate == nil || !errors.As(err, &loginRefused{}) {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	ep, rerr := s.cfg.Relocate(ctx)
	if rerr != nil {
		s.log.Warn("tunnel: login refused, and the cloud's API did not say where the home is served", "err", rerr)
		return false
	}
	if ep.Addr == s.cfg.Addr && ep.HostKey != nil && s.cfg.HostKey != nil && bytes.Equal(ep.HostKey.Marshal(), s.cfg.HostKey.Marshal()) {
		return false // the same endpoint: the refusal has another cause
	}
	s.log.Info("tunnel: the cloud serves this home at another endpoint now; reconnecting there", "from", s.cfg.Addr, "to", ep.Addr)
	s.cfg.Addr, s.cfg.HostKey = ep.Addr, ep.HostKey
	return true
}
