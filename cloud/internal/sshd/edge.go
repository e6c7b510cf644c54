package sshd

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/store"
)

// When several cloud nodes share one database (`cloud serve --edge NAME`),
// each SSH endpoint serves only the homes assigned to its edge: a home that
// dials another edge is refused with a banner naming the right one, and a
// home moved away loses its connection here (Revalidate), so its agent asks
// the API where to go.

// ErrOtherEdge refuses a home assigned to another edge.
var ErrOtherEdge = errors.New("the home is served by another edge")

// ownEdge refuses the login of a home this edge does not serve.
func (s *Server) ownEdge(ctx context.Context, meta ssh.ConnMetadata, h store.Home) error {
	if s.o.Edge == "" || h.Edge == s.o.Edge {
		return nil
	}
	where := "edge " + h.Edge
	if s.o.EdgeWhere != nil {
		where = s.o.EdgeWhere(ctx, h.Edge)
	}
	if h.Edge == "" {
		where = "no edge yet (ask the admin to assign one)"
	}
	s.refuse(h.Slug, "other_edge", "ssh login refused: the home is served by another edge", "edge", h.Edge)
	s.auditRefusal(meta, h, "served by "+where)
	return &ssh.BannerError{Err: ErrOtherEdge, Message: fmt.Sprintf(
		"homeport: home %s is served by %s, not by edge %s: fetch the home from the API (GET /api/v1/homes/%s) for its SSH endpoint and host key\r\n",
		h.Slug, where, s.o.Edge, h.Slug)}
}

// servedHere reports whether this endpoint still serves h.
func (s *Server) servedHere(h store.Home) bool { return s.o.Edge == "" || h.Edge == s.o.Edge }

// Load is the number of homes connected to this endpoint (an edge's load).
func (s *Server) Load() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
