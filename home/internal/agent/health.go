package agent

// What a visitor of each forward experiences. A forward is up only when
// three layers hold: the cloud has its mapping (the route visitors hit;
// without it they get the cloud's 503 page), the tunnel forward of its
// port is bound on the cloud on the live connection (without it, the
// cloud's offline page), and the local service answers (without it, the
// gateway's 502). The status names the first layer that does not hold, in
// words, with the time it has been so.

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/store"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto"
)

// MappingCheckInterval is how often a running agent asks the cloud
// whether it still has the home's mappings (one deleted in the web UI
// leaves the forward bound but visitors get 503). It also asks after every
// sync and reconnect, and when `home status` asks.
const MappingCheckInterval = 30 * time.Second

// mappingCheckTimeout bounds one request for the cloud's mappings.
const mappingCheckTimeout = 5 * time.Second

// statusCheckAge: `home status` asks the cloud again only when the last
// answer is older than this (a script polling status does not hammer it).
const statusCheckAge = 2 * time.Second

// Words of the forward states (control.ForwardStatus.Error).
const (
	whyClosed       = "closed"
	whyDeleted      = "the cloud has no mapping for it (deleted in the web UI?): run home sync-tunnels"
	whyNotMapped    = "not mapped in the cloud yet: run home sync-tunnels"
	whyDisconnected = "disconnected by home sync-tunnels --disconnect: run home sync-tunnels to map it again"
	whyNoAgent      = "no console or foreground tunnel runs for this profile: start home console"
)

// mappingCheck is what the cloud said of the home's mappings.
type mappingCheck struct {
	started time.Time       // when the request of the answer below was sent
	at      time.Time       // when it came; zero: never
	ids     map[uint64]bool // the mappings the cloud has
	// missing says since when a mapping an entry names has been absent.
	missing map[uint64]time.Time
	err     error // the last request's failure; ids are the last answer's
	errAt   time.Time
}

// has reports whether the cloud has mapping id as far as known: true
// until an answer lacks it.
func (m *mappingCheck) has(id uint64) (bool, time.Time) {
	if m.at.IsZero() || m.ids[id] {
		return true, time.Time{}
	}
	return false, m.missing[id]
}

// apply records an answer to a request sent at started (an answer older
// than the one recorded is dropped: a sync may have made new mappings
// since), for the mappings es name.
func (m *mappingCheck) apply(started time.Time, ms []proto.Mapping, err error, es []store.Entry) {
	if started.Before(m.started) {
		return
	}
	m.started = started
	now := time.Now()
	if err != nil {
		if m.err == nil {
			m.errAt = now
		}
		m.err = err
		return
	}
	m.err, m.errAt, m.at = nil, time.Time{}, now
	m.ids = make(map[uint64]bool, len(ms))
	for _, mp := range ms {
		m.ids[mp.ID] = true
	}
	missing := map[uint64]time.Time{}
	for _, e := range es {
		if e.MappingID == 0 || m.ids[e.MappingID] {
			continue
		}
		if since, ok := m.missing[e.MappingID]; ok {
			missing[e.MappingID] = since
		} else {
			missing[e.MappingID] = now
		}
	}
	m.missing = missing
}

// CheckMappings asks the cloud for the home's mappings now and records
// which entries lost theirs.
func (a *Agent) CheckMappings(ctx context.Context) error {
	started := time.Now()
	ctx, cancel := context.WithTimeout(ctx, mappingCheckTimeout)
	defer cancel()
	ms, err := a.Cloud.Mappings(ctx, a.Profile.Cloud.Home)
	a.mu.Lock()
	before, failed := len(a.mappings.missing), a.mappings.err != nil
	a.mappings.apply(started, ms, err, a.entries)
	after, failing := len(a.mappings.missing), a.mappings.err != nil
	a.mu.Unlock()
	if after > before {
		a.log.Warn("the cloud has no mapping for some forwards (deleted in the web UI?): home sync-tunnels maps them again", "missing", after)
	}
	if after != before || failed != failing {
		a.notify()
	}
	return err
}

// FreshStatus is Status after asking the cloud for its mappings, unless
// it answered moments ago (`home status`).
func (a *Agent) FreshStatus(ctx context.Context) control.Status {
	a.mu.Lock()
	stale := time.Since(a.mappings.started) > statusCheckAge
	a.mu.Unlock()
	if stale {
		a.CheckMappings(ctx)
	}
	return a.Status()
}

// checkMappingsLoop asks the cloud every MappingCheckInterval (or
// Options.MappingCheck) and when kicked (a reconnect), until ctx ends.
func (a *Agent) checkMappingsLoop(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = MappingCheckInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	kick := a.mappingKick()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
		a.CheckMappings(ctx)
	}
}

// mappingKick is the channel that asks checkMappingsLoop for a check now.
func (a *Agent) mappingKick() chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.recheck == nil {
		a.recheck = make(chan struct{}, 1)
	}
	return a.recheck
}

func (a *Agent) kickMappingCheck() {
	select {
	case a.mappingKick() <- struct{}{}:
	default:
	}
}

// localProbe knows whether each local target answers: a TCP connect
// within localTimeout, made again when the state is read and older than
// localFresh.
type localProbe struct {
	probing sync.Mutex // one round of probes at a time
	mu      sync.Mutex
	m       map[string]localState
}

type localState struct {
	up     bool
	since  time.Time // when up last changed
	probed time.Time
}

const (
	localTimeout = 500 * time.Millisecond
	localFresh   = 1500 * time.Millisecond
)

// states returns the state of every target, probing the stale ones (all
// at once).
func (p *localProbe) states(targets []string) map[string]localState {
	p.probing.Lock()
	defer p.probing.Unlock()
	now := time.Now()
	p.mu.Lock()
	if p.m == nil {
		p.m = map[string]localState{}
	}
	var stale []string
	for _, t := range targets {
		if now.Sub(p.m[t].probed) > localFresh {
			stale = append(stale, t)
		}
	}
	p.mu.Unlock()
	results := make([]bool, len(stale))
	var wg sync.WaitGroup
	for i, t := range stale {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = answers(t)
		}()
	}
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	done := time.Now()
	for i, t := range stale {
		s, seen := p.m[t]
		if !seen || s.up != results[i] {
			s.up, s.since = results[i], done
		}
		s.probed = done
		p.m[t] = s
	}
	out := make(map[string]localState, len(targets))
	for _, t := range targets {
		out[t] = p.m[t]
	}
	return out
}

// answers reports whether something accepts TCP connections at target.
func answers(target string) bool {
	c, err := net.DialTimeout("tcp", target, localTimeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// layers is what forwardStatus needs beyond the entry.
type layers struct {
	mappings *mappingCheck // nil: unknown (the cloud was not asked)
	running  bool          // a tunnel supervisor runs
	tunnel   tunnel.Status
	// tunnelWhy says why no tunnel runs, when running is false.
	tunnelWhy string
	local     map[string]localState
}

// forwardStatus is entry e's state: up only when the cloud has its mapping,
// its forward is bound on the live connection and the local service
// answers; otherwise Error names the first layer that fails, in words, and
// Since when it has.
func forwardStatus(e store.Entry, l layers) control.ForwardStatus {
	f := control.ForwardStatus{Entry: e.ID, Public: e.Public(), Target: e.Target, TunnelPort: e.TunnelPort}
	loc := l.local[e.Target]
	f.LocalUp = loc.up
	f.CloudMapping = e.TunnelPort != 0 && !e.Disconnected
	missingSince := time.Time{}
	if f.CloudMapping && l.mappings != nil {
		f.CloudMapping, missingSince = l.mappings.has(e.MappingID)
	}
	fs, ok := l.tunnel.Forward(e.TunnelPort)
	connected := l.running && l.tunnel.State == tunnel.StateConnected
	f.Bound = ok && connected && fs.Up
	set := func(state, why string, since time.Time) {
		f.State, f.Error, f.Since = state, why, since
	}
	switch {
	case !e.Enabled:
		set(control.ForwardClosed, whyClosed, time.Time{})
	case e.Disconnected:
		set(control.ForwardNoMapping, whyDisconnected, time.Time{})
	case e.TunnelPort == 0 && e.SyncError != "":
		set(control.ForwardNoMapping, "the cloud did not map it: "+e.SyncError, time.Time{})
	case e.TunnelPort == 0:
		set(control.ForwardNoMapping, whyNotMapped, time.Time{})
	case !f.CloudMapping:
		set(control.ForwardNoMapping, whyDeleted, missingSince)
	case !l.running:
		set(control.ForwardNotBound, "the tunnel is not running: "+l.tunnelWhy, time.Time{})
	case !connected:
		why := "the tunnel is not connected (" + l.tunnel.State.String()
		if l.tunnel.LastError != nil {
			why += ": " + l.tunnel.LastError.Error()
		}
		set(control.ForwardNotBound, why+")", l.tunnel.Since)
	case ok && fs.LastError != nil:
		set(control.ForwardNotBound, fs.LastError.Error(), fs.Since)
	case !f.Bound:
		set(control.ForwardNotBound, fmt.Sprintf("waiting for the cloud to bind its tunnel port %d", e.TunnelPort), fs.Since)
	case !loc.up:
		set(control.ForwardLocalDown, "nothing answers on "+e.Target+" (visitors get 502 Bad Gateway)", loc.since)
	default:
		f.Up = true
		since := fs.Since
		if loc.since.After(since) {
			since = loc.since
		}
		set(control.ForwardUp, "", since)
	}
	return f
}

// targets are the local targets of es, each once.
func targets(es []store.Entry) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range es {
		if !seen[e.Target] {
			seen[e.Target] = true
			out = append(out, e.Target)
		}
	}
	return out
}

// mappingsReport fills the status's word on the last mapping check.
func mappingsReport(st *control.Status, m *mappingCheck) {
	st.MappingsChecked = m.at
	if m.err != nil {
		st.MappingsError = "cannot read the cloud's mappings: " + m.err.Error()
		st.MappingsErrorSince = m.errAt
	}
}

// MappingsReader is what OfflineStatus needs of the cloud.
type MappingsReader interface {
	Mappings(ctx context.Context, slug string) ([]proto.Mapping, error)
}

// OfflineStatus is the status of profile p while no agent runs for it
// (`home status` without a console): no tunnel, so nothing is up, but it
// asks the cloud for the mappings and probes the local services, so each
// forward says everything that is wrong with it, not only the tunnel.
func OfflineStatus(ctx context.Context, p *config.Profile, es []store.Entry, cloud MappingsReader) control.Status {
	st := control.Status{Profile: p.Dir, Home: p.Cloud.Home, Cloud: p.Cloud.URL,
		Tunnel: control.TunnelStatus{State: "stopped", LastError: "no console runs for this profile"}}
	var mc mappingCheck
	if cloud != nil {
		started := time.Now()
		cctx, cancel := context.WithTimeout(ctx, mappingCheckTimeout)
		ms, err := cloud.Mappings(cctx, p.Cloud.Home)
		cancel()
		mc.apply(started, ms, err, es)
		mappingsReport(&st, &mc)
	}
	var probe localProbe
	l := layers{mappings: &mc, tunnelWhy: whyNoAgent, local: probe.states(targets(es))}
	for _, e := range es {
		f := forwardStatus(e, l)
		if f.State == control.ForwardNotBound {
			// Say the local service's state too: it is what a started
			// console would meet.
			if !f.LocalUp && e.Enabled {
				f.Error += "; and nothing answers on " + e.Target
			}
		}
		st.Forwards = append(st.Forwards, f)
	}
	return st
}
