package sshd

import (
	"context"
	"errors"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/store"
)

// A deactivated account's homes are offline: their keys are refused at
// login (ownerActive) and their live connections closed (CloseUsers), which
// also frees their tunnel ports and ends their direct-tcpip channels.

// ownerActive refuses the login of a home whose account is deactivated (or
// not yet approved). Without Options.OwnerActive every owner counts as active.
func (s *Server) ownerActive(ctx context.Context, meta ssh.ConnMetadata, h store.Home) error {
	if s.o.OwnerActive == nil {
		return nil
	}
	active, err := s.o.OwnerActive(ctx, h.UserID)
	if err != nil {
		s.o.Log.Warn("ssh login refused: cannot read the account's state", "home", h.Slug, "err", err)
		return errors.New("account state unknown")
	}
	if !active {
		s.o.Log.Info("ssh login refused: the home's account is deactivated", "remote", meta.RemoteAddr().String(), "home", h.Slug)
		return errors.New("account deactivated")
	}
	return nil
}

// CloseUsers closes the live connections of every home owned by one of
// userIDs (deactivated accounts) and returns how many it closed. It is cheap
// when there is nothing to close, so a watcher may call it on every tick:
// that also catches a connection that authenticated just before the
// deactivation and registered just after it.
func (s *Server) CloseUsers(userIDs ...uint64) int {
	if len(userIDs) == 0 {
		return 0
	}
	users := make(map[uint64]bool, len(userIDs))
	for _, id := range userIDs {
		users[id] = true
	}
	s.mu.Lock()
	var doomed []*session
	for _, sess := range s.sessions {
		if users[sess.home.UserID] {
			doomed = append(doomed, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range doomed {
		s.o.Log.Info("closing home connection: its account is deactivated", "home", sess.home.Slug)
		sess.close()
	}
	return len(doomed)
}
