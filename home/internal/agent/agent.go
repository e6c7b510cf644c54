// Package agent runs a profile: it syncs the entries with the cloud, keeps
// the one SSH tunnel up through the tunnel supervisor, routes every
// forwarded connection through the gateway to its local service, keeps the
// certificates of its names issued and renewed (answering the CA's
// challenges in the gateway), and answers `home` commands on the profile's
// control socket. The console is this plus a dashboard; `home sync-tunnels
// --foreground` is this alone.
package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/home/internal/certs"
	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/entries"
	"homeport.dev/home/internal/gateway"
	"homeport.dev/home/internal/profile"
	"homeport.dev/home/internal/store"
	"homeport.dev/home/internal/traffic"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto"
)

// Agent is one running profile.
type Agent struct {
	Profile *config.Profile
	DB      *store.DB
	Cloud   *cloudapi.Client
	log     *slog.Logger
	gw      *gateway.Gateway
	certs   *certs.Manager
	tcfg    tunnel.Config
	manual  bool // certificates only when asked (Options.ManualCerts)
	// traffic counts each forward's bytes, for the console (traffic.go).
	traffic *traffic.Recorder

	mu       sync.Mutex
	sup      *tunnel.Supervisor // nil while disconnected
	ctx      context.Context    // Run's context, for supervisors started later
	entries  []store.Entry      // as last loaded
	lastSync entries.Report
	syncErr  error
	// syncErrAt is when syncErr began.
	syncErrAt time.Time
	// mappings is what the cloud said of the home's mappings (health.go).
	mappings mappingCheck
	recheck  chan struct{} // asks for a mapping check now (mappingKick)
	local    localProbe    // whether each local service answers
	// mappingEvery is how often the cloud's mappings are checked
	// (Options.MappingCheck).
	mappingEvery time.Duration
	// configErr is why the last read of config.yaml's forwards was refused.
	configErr error
	// held is set by Disconnect (the user's "Disconnect all"): background
	// reloads (a config.yaml edit, the sync retry) keep the tunnel down
	// until the user's Reload or Connect.
	held    bool
	subs    map[chan struct{}]struct{}
	stopSub func()
}

// Options tune an agent; zero values are the production defaults.
type Options struct {
	Log    *slog.Logger
	Tunnel tunnel.Config // timing overrides (Keepalive, backoff); identity comes from the profile
	// MappingCheck is how often the agent asks the cloud whether it still
	// has the home's mappings; default MappingCheckInterval.
	MappingCheck time.Duration
	// Certs overrides the certificate manager's timing (RenewWindow,
	// Retry*, CheckInterval, PollInterval, AttemptTimeout) and Profile;
	// the CA, account and paths come from the profile's acme section.
	Certs certs.Config
	// ManualCerts obtains certificates only when asked (IssueCertificate),
	// never on its own: for a one-off `home certs issue` without a console.
	ManualCerts bool
	// TrafficStep is the time between samples of the forwards' traffic;
	// default traffic.DefaultStep.
	TrafficStep time.Duration
}

// New prepares an agent for profile p.
func New(p *config.Profile, db *store.DB, o Options) (*Agent, error) {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	finishRotation(p, log)
	signer, err := p.Signer()
	if err != nil {
		return nil, err
	}
	client, err := p.CloudClientAs(signer)
	if err != nil {
		return nil, err
	}
	hostKey, err := p.HostKey()
	if err != nil {
		return nil, fmt.Errorf("cloud.ssh.host_key: %w", err)
	}
	tcfg := o.Tunnel
	tcfg.Home, tcfg.Addr, tcfg.Signer, tcfg.HostKey, tcfg.Log = p.Cloud.Home, p.SSHAddr(), signer, hostKey, log
	certsCfg := o.Certs
	certsCfg.Issued = func(ctx context.Context, domain string) {
		// Best effort: the certificate is in service either way; the cloud
		// only counts it to warn before the CA's weekly limit.
		if err := client.ReportCertificate(ctx, p.Cloud.Home, domain); err != nil {
			log.Warn("certs: the cloud did not take the issuance report", "domain", domain, "err", err)
		}
	}
	cm, err := newCerts(p, certsCfg, log.With("home", p.Cloud.Home))
	if err != nil {
		return nil, err
	}
	a := &Agent{
		traffic: traffic.New(o.TrafficStep, 0),
		Profile: p, DB: db, Cloud: client, log: log.With("home", p.Cloud.Home), certs: cm, manual: o.ManualCerts,
		gw: gateway.New(gateway.Options{Home: p.Cloud.Home, AllowLAN: p.Features.LANForwarding, Log: log,
			WrapHTTP: cm.HTTPHandler, ChallengeCert: cm.ChallengeCert}),
		subs: map[chan struct{}]struct{}{},
	}
	tcfg.Relocate = a.relocate // relocate.go
	a.tcfg = tcfg
	a.mappingEvery = o.MappingCheck
	return a, nil
}

// finishRotation completes a key rotation that was interrupted after the
// cloud took the new key (profile.RecoverKey), so the agent starts with the
// key the cloud has.
func finishRotation(p *config.Profile, log *slog.Logger) {
	if _, err := os.Stat(profile.PendingKeyPath(p)); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	promoted, err := profile.RecoverKey(ctx, p)
	switch {
	case err != nil:
		log.Warn("an interrupted key rotation could not be finished", "err", err)
	case promoted:
		log.Info("finished an interrupted key rotation: the cloud has the new key", "key", p.KeyPath())
	}
}

// Rekey re-reads the home's key (after `home rotate-key`) and reconnects
// the tunnel with it: traffic stops only for the reconnect. API requests
// are signed with the new key from now on.
func (a *Agent) Rekey(ctx context.Context) error {
	signer, err := a.Profile.Signer()
	if err != nil {
		return err
	}
	if err := a.Cloud.SetSigner(signer); err != nil {
		return err
	}
	a.mu.Lock()
	a.tcfg.Signer = signer
	running := a.sup != nil
	a.mu.Unlock()
	a.log.Info("reconnecting with the home's new key", "key", ssh.FingerprintSHA256(signer.PublicKey()))
	if !running {
		return nil
	}
	a.Disconnect(ctx)
	return a.Reload(ctx)
}

// newCerts makes the certificate manager of profile p: its acme section
// decides the CA, account and paths; o only tunes timing.
func newCerts(p *config.Profile, o certs.Config, log *slog.Logger) (*certs.Manager, error) {
	o.Dir, o.CA, o.Email, o.Log = p.CertsPath(), p.ACME.Directory(), p.ACME.Email, log
	o.DisableTLSALPN, o.DisableHTTP01, o.DeployPath, o.Cloud = p.ACME.DisableTLSALPN, p.ACME.DisableHTTP01, p.DeployPath(), p.Cloud.SSH.Host
	o.Roots = nil
	if path := p.TrustedRootsPath(); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("acme.trusted_roots: %w", err)
		}
		o.Roots = x509.NewCertPool()
		if !o.Roots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("acme.trusted_roots: %s holds no PEM certificate", path)
		}
	}
	return certs.New(o)
}

// Run syncs at start, connects, serves the control socket, and keeps going
// until ctx ends. A failing sync (cloud unreachable) is reported in the
// status and retried; the tunnel still comes up for the entries already known.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	a.ctx = ctx
	a.mu.Unlock()
	// Serve's error, then closed: a receive returns once Serve has.
	ctrl := make(chan error, 1)
	go func() {
		ctrl <- control.Serve(ctx, a.Profile.SocketPath(), a)
		close(ctrl)
	}()
	// A second agent of the same profile is refused at the socket: fail fast.
	select {
	case err := <-ctrl:
		if err != nil {
			return err
		}
	case <-time.After(100 * time.Millisecond):
	}
	defer a.certs.Close()
	certChanges, stopCerts := a.certs.Subscribe()
	defer stopCerts()
	if !a.manual {
		go a.certs.Run(ctx)
	}
	go a.traffic.Run(ctx)
	go a.checkMappingsLoop(ctx, a.mappingEvery)
	configSeen := stampOf(a.Profile.ConfigPath())
	// Not Reload: a "Disconnect all" that came in first holds.
	if err := a.reload(ctx, false); err != nil {
		a.log.Warn("initial sync failed; retrying in the background", "err", err)
	}
	retry := time.NewTicker(30 * time.Second)
	defer retry.Stop()
	// Hand edits of config.yaml are picked up by polling its time and size
	// (a dependency-free file watch; `home reload` does it at once).
	configPoll := time.NewTicker(ConfigPollInterval)
	defer configPoll.Stop()
	defer a.Disconnect(context.Background())
	defer a.gw.Close()
	for {
		select {
		case <-ctx.Done():
			// The control socket closes (and its file goes) before Run
			// returns: an agent of the same profile started next in this
			// process would otherwise find it answering and refuse to run.
			return <-ctrl
		case err := <-ctrl:
			return err
		case <-certChanges:
			a.notify()
		case <-configPoll.C:
			if now := stampOf(a.Profile.ConfigPath()); now != configSeen {
				configSeen = now
				if err := a.reload(ctx, false); err != nil {
					a.log.Warn("config.yaml changed; reloading", "err", err)
				}
			}
		case <-retry.C:
			a.mu.Lock()
			failed := a.syncErr != nil || !a.lastSync.InSync
			a.mu.Unlock()
			if failed {
				a.reload(ctx, false)
			}
		}
	}
}

// Reload syncs the entries with the cloud, then (re)connects the tunnel with
// a forward per synced, enabled entry. A tunnel that another copy of the
// profile took over is started again: Reload is the user's say.
func (a *Agent) Reload(ctx context.Context) error { return a.reload(ctx, true) }

// reload is Reload; takeBack says whether a tunnel that another copy of the
// profile took over starts again (the periodic retry must not: the two
// copies would take the tunnel from each other).
func (a *Agent) reload(ctx context.Context, takeBack bool) error {
	return a.reloadWith(ctx, takeBack, false)
}

// reloadWith is reload; connect maps again the entries `home sync-tunnels
// --disconnect` left unmapped (Connect all: the user's say).
func (a *Agent) reloadWith(ctx context.Context, takeBack, connect bool) error {
	// An invalid forwards: list (a hand edit) is refused before anything
	// changes: the running forwards stay, and the status says why.
	_, configErr := a.DB.Entries(ctx)
	a.mu.Lock()
	a.configErr = configErr
	a.mu.Unlock()
	if configErr != nil {
		a.notify()
		return fmt.Errorf("%w\n(refused: the running forwards stay as they were)", configErr)
	}
	rep, syncErr := entries.Sync(ctx, a.Cloud, a.Profile.Cloud.Home, a.DB, entries.Options{Connect: connect})
	es, err := a.DB.Entries(ctx)
	if err != nil {
		return err
	}
	// What the cloud has now, recorded with the entries that name it (an
	// older answer would miss the mappings this sync made).
	checked := time.Now()
	mctx, cancel := context.WithTimeout(ctx, mappingCheckTimeout)
	ms, msErr := a.Cloud.Mappings(mctx, a.Profile.Cloud.Home)
	cancel()
	a.mu.Lock()
	if syncErr == nil {
		a.syncErrAt = time.Time{}
	} else if a.syncErr == nil {
		a.syncErrAt = time.Now()
	}
	a.entries, a.lastSync, a.syncErr = es, rep, syncErr
	a.mappings.apply(checked, ms, msErr, es)
	a.mu.Unlock()
	defer a.notify()
	if err := a.connect(takeBack); err != nil {
		return err
	}
	if syncErr != nil {
		return fmt.Errorf("sync with the cloud: %w", syncErr)
	}
	if !rep.InSync {
		return errors.New("some entries could not be synced; see their errors")
	}
	return nil
}

// connect starts the supervisor if needed and sets its forwards; with
// takeBack, a supervisor replaced by another copy of the profile is
// replaced by a new one.
func (a *Agent) connect(takeBack bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.held && !takeBack {
		return nil // disconnected by the user: only their Reload connects
	}
	a.held = false
	if a.sup != nil && takeBack && a.sup.Status().State == tunnel.StateReplaced {
		a.stopSub()
		a.sup.Stop() // it has ended already: returns at once
		a.sup, a.stopSub = nil, nil
	}
	a.keepTraffic()
	var fs []tunnel.Forward
	for _, e := range a.entries {
		if !e.Enabled || e.TunnelPort == 0 {
			continue
		}
		h, err := a.gw.Handler(a.gatewayEntry(e))
		if err != nil {
			a.log.Warn("entry refused by the gateway", "entry", e.ID, "err", err)
			continue
		}
		fs = append(fs, tunnel.Forward{TunnelPort: e.TunnelPort, Handler: h})
	}
	if a.sup == nil {
		if a.ctx == nil {
			return errors.New("agent not running")
		}
		sup, err := tunnel.New(a.tcfg)
		if err != nil {
			return err
		}
		if err := sup.SetForwards(fs); err != nil {
			return err
		}
		if err := sup.Start(a.ctx); err != nil {
			return err
		}
		a.sup = sup
		a.watch(sup)
		a.certs.SetDomains(certDomains(a.entries, sup.Status(), true, a.Profile.DeployPath()))
		return nil
	}
	err := a.sup.SetForwards(fs)
	a.certs.SetDomains(certDomains(a.entries, a.sup.Status(), true, a.Profile.DeployPath()))
	return err
}

// watch forwards the supervisor's status changes to subscribers and tells
// the certificate manager which names the CA can reach now.
func (a *Agent) watch(sup *tunnel.Supervisor) {
	ch, stop := sup.Subscribe()
	a.stopSub = stop
	go func() {
		connects := 0
		for st := range ch {
			if st.Connects > connects && connects > 0 {
				a.kickMappingCheck() // reconnected: the cloud may have changed meanwhile
			}
			connects = st.Connects
			a.mu.Lock()
			es := a.entries
			a.mu.Unlock()
			a.certs.SetDomains(certDomains(es, st, true, a.Profile.DeployPath()))
			a.notify()
		}
	}()
}

func (a *Agent) gatewayEntry(e store.Entry) gateway.Entry {
	g := gateway.Entry{Target: e.Target, SendProxy: e.ProxyProtocol, Private: e.Private, Count: a.traffic.Counter(e.Public())}
	switch e.Scheme {
	case proto.SchemeHTTP:
		g.Kind = gateway.HTTP
	case proto.SchemeHTTPS:
		g.Kind = gateway.HTTPS
		if e.Mode == store.ModeTerminate {
			g.TLS = a.certs.TLSConfig()
		}
	default:
		g.Kind = gateway.TCP
	}
	return g
}

// certDomains says, for every http and https name, whether the home wants
// a certificate on its own (an https entry that terminates TLS, or a deploy
// path) and which challenge paths reach it now: TLS-ALPN-01 through an
// https forward that is up, HTTP-01 through an http forward that is up or,
// for a name without an http mapping, through the cloud's ACME route to
// its https forward.
func certDomains(es []store.Entry, ts tunnel.Status, connected bool, globalDeploy string) []certs.Domain {
	type acc struct {
		d                        certs.Domain
		httpsUp, httpUp, httpMap bool
		mapped, enabled          bool
		fwdErr                   string
	}
	byName := map[string]*acc{}
	var order []string
	for _, e := range es {
		if e.Host == "" || e.Scheme == proto.SchemeTCP {
			continue
		}
		x := byName[e.Host]
		if x == nil {
			x = &acc{d: certs.Domain{Name: e.Host}}
			byName[e.Host] = x
			order = append(order, e.Host)
		}
		if !e.Enabled {
			continue
		}
		x.enabled = true
		mapped := e.TunnelPort != 0
		x.mapped = x.mapped || mapped
		up := false
		if fs, ok := ts.Forward(e.TunnelPort); ok && mapped && connected {
			up = fs.Up
			if fs.LastError != nil {
				x.fwdErr = fs.LastError.Error()
			}
		}
		deploy := e.DeployPath
		if deploy != "" {
			x.d.DeployPath = deploy
		}
		switch e.Scheme {
		case proto.SchemeHTTPS:
			x.httpsUp = x.httpsUp || up
			if e.Mode == store.ModeTerminate || deploy != "" || globalDeploy != "" {
				x.d.Auto = true
			}
		case proto.SchemeHTTP:
			x.httpMap = x.httpMap || mapped
			x.httpUp = x.httpUp || up
			if deploy != "" {
				x.d.Auto = true
			}
		}
	}
	out := make([]certs.Domain, 0, len(order))
	for _, name := range order {
		x := byName[name]
		x.d.TLSALPN = x.httpsUp
		x.d.HTTP01 = x.httpUp || !x.httpMap && x.httpsUp
		switch {
		case x.d.TLSALPN || x.d.HTTP01:
		case !x.enabled:
			x.d.Down, x.d.Why = certs.NoMapping, "its entries are closed (home forwards open ID)"
		case !x.mapped:
			x.d.Down, x.d.Why = certs.NoMapping, "it has no mapping in the cloud yet (home sync-tunnels)"
		case ts.State != tunnel.StateConnected || !connected:
			x.d.Down, x.d.Why = certs.NotConnected, "the tunnel is "+tunnelState(ts, connected)
		case x.fwdErr != "":
			x.d.Down, x.d.Why = certs.NotConnected, "the cloud refused its tunnel forward: "+x.fwdErr
		default:
			x.d.Down, x.d.Why = certs.NotConnected, "its tunnel forward is not up yet"
		}
		out = append(out, x.d)
	}
	return out
}

func tunnelState(ts tunnel.Status, connected bool) string {
	if !connected {
		return "disconnected (Connect all, or start the console)"
	}
	return ts.State.String()
}

// IssueCertificate obtains (renew: replaces) the certificate of domain now,
// reporting the steps to progress.
func (a *Agent) IssueCertificate(ctx context.Context, domain string, renew bool, progress certs.Progress) (certs.Info, error) {
	if renew {
		return a.certs.Renew(ctx, domain, progress)
	}
	return a.certs.Issue(ctx, domain, progress)
}

// Entries are the entries the agent runs, as last read from config.yaml
// (a refused edit leaves them as they were).
func (a *Agent) Entries() []store.Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]store.Entry(nil), a.entries...)
}

// Certificates is the state of every certificate, by name.
func (a *Agent) Certificates() []certs.Info { return a.certs.Status() }

// Connect brings the tunnel up with every open entry mapped (Connect all),
// those `home sync-tunnels --disconnect` unmapped too.
func (a *Agent) Connect(ctx context.Context) error { return a.reloadWith(ctx, true, true) }

// Disconnect closes the tunnel (Disconnect all); the mappings stay.
func (a *Agent) Disconnect(context.Context) error {
	a.mu.Lock()
	sup, stop := a.sup, a.stopSub
	a.sup, a.stopSub, a.held = nil, nil, true
	a.mu.Unlock()
	if sup != nil {
		stop()
		sup.Stop()
	}
	a.mu.Lock()
	es := a.entries
	a.mu.Unlock()
	a.certs.SetDomains(certDomains(es, tunnel.Status{State: tunnel.StateStopped}, false, a.Profile.DeployPath()))
	a.notify()
	return nil
}

// Replaced returns the *tunnel.ReplacedError that says where the profile
// runs when another copy of it took the tunnel over (the tunnel stays down
// until Reload), or nil.
func (a *Agent) Replaced() error {
	a.mu.Lock()
	sup := a.sup
	a.mu.Unlock()
	if sup == nil {
		return nil
	}
	if st := sup.Status(); st.State == tunnel.StateReplaced {
		return st.LastError
	}
	return nil
}

// UntilReplaced waits until ctx ends (nil) or another copy of the profile
// takes the tunnel over (Replaced's error): a foreground run ends then,
// non-zero, rather than stay up with no tunnel.
func (a *Agent) UntilReplaced(ctx context.Context) error {
	changed, stop := a.Subscribe()
	defer stop()
	for {
		if err := a.Replaced(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// Dial opens a connection to a private mapping's tunnel port through the
// cloud (home connect).
func (a *Agent) Dial(ctx context.Context, port int) (net.Conn, error) {
	a.mu.Lock()
	sup := a.sup
	a.mu.Unlock()
	if sup == nil {
		return nil, errors.New("the tunnel is disconnected")
	}
	return sup.Dial(ctx, port)
}

// Subscribe returns a channel that receives a value after every change of
// the status (coalesced), and a function to stop.
func (a *Agent) Subscribe() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	a.mu.Lock()
	a.subs[c] = struct{}{}
	a.mu.Unlock()
	return c, func() {
		a.mu.Lock()
		delete(a.subs, c)
		a.mu.Unlock()
	}
}

func (a *Agent) notify() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for c := range a.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Status is the truth about the tunnel and every entry: a forward is up
// only when its visitors reach the local service (health.go).
func (a *Agent) Status() control.Status {
	a.mu.Lock()
	sup, es, syncErr, syncErrAt, configErr := a.sup, a.entries, a.syncErr, a.syncErrAt, a.configErr
	mappings := a.mappings // apply replaces its maps, never changes them
	a.mu.Unlock()
	st := control.Status{Profile: a.Profile.Dir, Home: a.Profile.Cloud.Home, Cloud: a.Profile.Cloud.URL,
		Tunnel: control.TunnelStatus{State: "stopped", LastError: "disconnected"}}
	if configErr != nil {
		st.ConfigError = configErr.Error()
	}
	l := layers{mappings: &mappings, running: sup != nil, tunnelWhy: "disconnected (Connect all, or home sync-tunnels)",
		local: a.local.states(targets(es))}
	if sup != nil {
		ts := sup.Status()
		l.tunnel = ts
		st.Tunnel = control.TunnelStatus{State: ts.State.String(), Since: ts.Since, Attempts: ts.Attempts}
		// The tunnel keeps its last error as history; once connected it
		// is no longer true, and is not shown.
		if ts.LastError != nil && ts.State != tunnel.StateConnected {
			st.Tunnel.LastError, st.Tunnel.ErrorSince = ts.LastError.Error(), ts.Since
		}
		var replaced *tunnel.ReplacedError
		if ts.State == tunnel.StateReplaced && errors.As(ts.LastError, &replaced) {
			st.Tunnel.RunningOn, st.Tunnel.RunningSince = replaced.By, replaced.Since
		}
	}
	if syncErr != nil {
		st.Tunnel.LastError, st.Tunnel.ErrorSince = "sync: "+syncErr.Error(), syncErrAt
	}
	mappingsReport(&st, &mappings)
	for _, e := range es {
		st.Forwards = append(st.Forwards, forwardStatus(e, l))
	}
	st.Certificates = a.certs.Status()
	return st
}

// ConfigPollInterval is how often a running agent looks for hand edits of
// config.yaml.
const ConfigPollInterval = time.Second

// fileStamp tells two versions of a file apart: an edit, or an atomic
// replace, changes its modification time or size.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) fileStamp {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{st.ModTime(), st.Size()}
}
