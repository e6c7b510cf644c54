package sshd

import (
	"net"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// auditConn records a connection event of home h from addr, at most once
// per event, home and address each interval (audit.Events): a home that
// reconnects in a loop leaves a record a minute, not one per attempt.
func (s *Server) auditConn(kind string, h store.Home, addr net.Addr, after map[string]any) {
	if s.o.Audit == nil {
		return
	}
	ip := hostOf(addr)
	e := audit.Entry{Kind: kind, Home: h.Slug, Target: h.Slug, OwnerID: h.UserID}
	if after != nil {
		e.After = after
	}
	s.o.Audit.Add(audit.Actor{Kind: proto.ActorHome, Name: h.Slug, Addr: ip}, kind+" "+h.Slug+" "+ip, e)
}

// auditRefusal records a refused login: the home when the key names one,
// else the login name the client gave. One record per address and reason
// each interval, whatever a scanner tries.
func (s *Server) auditRefusal(meta ssh.ConnMetadata, h store.Home, reason string) {
	if s.o.Audit == nil {
		return
	}
	ip := hostOf(meta.RemoteAddr())
	name := h.Slug
	if name == "" {
		name = proto.Printable(meta.User())
	}
	e := audit.Entry{Kind: "ssh.refused", Home: h.Slug, Target: name, OwnerID: h.UserID,
		After: map[string]any{"reason": reason, "user": proto.Printable(meta.User())}}
	s.o.Audit.Add(audit.Actor{Kind: proto.ActorHome, Name: name, Addr: ip}, "ssh.refused "+ip+" "+reason, e)
}

func hostOf(addr net.Addr) string {
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}
