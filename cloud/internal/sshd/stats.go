package sshd

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	"homeport.dev/cloud/internal/store"
	"homeport.dev/cloud/internal/traffic"
)

// HomeStats is what the endpoint knows of one home since the cloud
// started: the dashboards' "online since", "last seen" and traffic.
type HomeStats struct {
	Slug           string
	Online         bool
	ConnectedSince time.Time // of the live connection; zero when offline
	LastSeen       time.Time // the last keepalive answer, login or disconnect
	ClientAddr     string    // of the live or the last connection
	ClientVersion  string    // the SSH version string the agent sent
	AgentWarning   string    // what fails because of the agent's version ("" if nothing)
	ForwardsUp     int       // tunnel ports the live connection listens on
	BytesIn        uint64    // through the home's tunnels since start, towards the home
	BytesOut       uint64    // from the home
}

// homeStats is the endpoint's record of a home: counters the data path
// adds to without a lock, facts written under Server.mu.
type homeStats struct {
	in, out atomic.Uint64

	slug, addr, version, warning string
	lastSeen                     time.Time
}

// headerAgent is the version string of the home agents that refuse public
// HTTP without a PROXY header (before SSH-2.0-homeport-home-2), and the
// prefix of every agent's.
const headerAgent = "SSH-2.0-homeport-home"

// agentWarning says what fails for a home whose agent sent version.
func (s *Server) agentWarning(version string) string {
	if s.o.HeaderlessHTTP && version == headerAgent {
		return "its public HTTP mappings answer 502: this agent needs a PROXY header, which --reuse-home-connections leaves out; upgrade the agent, or run the cloud with --reuse-home-connections=false"
	}
	return ""
}

// statsOf returns the record of h, made at its first login. Call with
// s.mu held.
func (s *Server) statsOf(h store.Home) *homeStats {
	st := s.stats[h.ID]
	if st == nil {
		st = &homeStats{slug: h.Slug}
		s.stats[h.ID] = st
	}
	return st
}

// seen records that a home's connection is alive now.
func (s *Server) seen(st *homeStats) {
	s.mu.Lock()
	st.lastSeen = time.Now()
	s.mu.Unlock()
}

// Stats is every home the endpoint met since start and has not forgotten
// (released homes are), by home ID.
func (s *Server) Stats() map[uint64]HomeStats {
	s.mu.Lock()
	out := make(map[uint64]HomeStats, len(s.stats))
	live := map[uint64]*session{}
	for id, st := range s.stats {
		out[id] = HomeStats{Slug: st.slug, LastSeen: st.lastSeen, ClientAddr: st.addr, ClientVersion: st.version,
			AgentWarning: st.warning, BytesIn: st.in.Load(), BytesOut: st.out.Load()}
		if sess := s.sessions[id]; sess != nil {
			live[id] = sess
		}
	}
	s.mu.Unlock()
	for id, sess := range live {
		hs := out[id]
		hs.Online, hs.ConnectedSince, hs.ForwardsUp = true, sess.since, sess.forwards()
		out[id] = hs
	}
	return out
}

// Counts is the traffic recorder's source: every known home's counters and
// how many homes are connected.
func (s *Server) Counts() (map[uint64]traffic.Count, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[uint64]traffic.Count, len(s.stats))
	for id, st := range s.stats {
		out[id] = traffic.Count{Home: st.slug, In: st.in.Load(), Out: st.out.Load()}
	}
	return out, len(s.sessions)
}

// Changes counts logins and disconnects: a page that shows who is online
// has to redraw when it moves.
func (s *Server) Changes() uint64 { return s.changes.Load() }

// forgetIfGone drops the record of a home the database no longer has.
func (s *Server) forgetIfGone(ctx context.Context, homeID uint64) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.o.Homes.ByID(ctx, homeID); store.IsNotFound(err) {
		s.mu.Lock()
		delete(s.stats, homeID)
		s.mu.Unlock()
	}
}

// counting adds what passes through w to n as it goes, so rates are live
// while a long connection is still open.
type counting struct {
	w io.Writer
	n *atomic.Uint64
}

func (c counting) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(uint64(n))
	return n, err
}
