// Package agent runs a profile: it syncs the entries with the cloud, keeps
// the one SSH tunnel up through the tunnel supervisor, routes every
// forwarded connection through the gateway to its local service, and
// answers `home` commands on the profile's control socket. The console is
// this plus a dashboard; `home sync-tunnels --foreground` is this alone.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/entries"
	"homeport.dev/home/internal/gateway"
	"homeport.dev/home/internal/store"
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
	tcfg    tunnel.Config

	mu       sync.Mutex
	sup      *tunnel.Supervisor // nil while disconnected
	ctx      context.Context    // Run's context, for supervisors started later
	entries  []store.Entry      // as last loaded
	lastSync entries.Report
	syncErr  error
	subs     map[chan struct{}]struct{}
	stopSub  func()
}

// Options tune an agent; zero values are the production defaults.
type Options struct {
	Log    *slog.Logger
	Tunnel tunnel.Config // timing overrides (Keepalive, backoff); identity comes from the profile
}

// New prepares an agent for profile p.
func New(p *config.Profile, db *store.DB, o Options) (*Agent, error) {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	client, err := cloudapi.New(p.Cloud.URL, p.Cloud.Token)
	if err != nil {
		return nil, err
	}
	keyBytes, err := os.ReadFile(p.KeyPath())
	if err != nil {
		return nil, fmt.Errorf("the home's key (key: in %s): %w", p.ConfigPath(), err)
	}
	signer, err := ssh.ParsePrivateKey(keyBytes)
	if err != nil {
		return nil, fmt.Errorf("the home's key %s: %w", p.KeyPath(), err)
	}
	hostKey, err := p.HostKey()
	if err != nil {
		return nil, fmt.Errorf("cloud.ssh.host_key: %w", err)
	}
	tcfg := o.Tunnel
	tcfg.Home, tcfg.Addr, tcfg.Signer, tcfg.HostKey, tcfg.Log = p.Cloud.Home, p.SSHAddr(), signer, hostKey, log
	a := &Agent{
		Profile: p, DB: db, Cloud: client, log: log.With("home", p.Cloud.Home), tcfg: tcfg,
		gw:   gateway.New(gateway.Options{Home: p.Cloud.Home, AllowLAN: p.Features.LANForwarding, Log: log}),
		subs: map[chan struct{}]struct{}{},
	}
	return a, nil
}

// Run syncs at start, connects, serves the control socket, and keeps going
// until ctx ends. A failing sync (cloud unreachable) is reported in the
// status and retried; the tunnel still comes up for the entries already known.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	a.ctx = ctx
	a.mu.Unlock()
	ctrl := make(chan error, 1)
	go func() { ctrl <- control.Serve(ctx, a.Profile.SocketPath(), a) }()
	// A second agent of the same profile is refused at the socket: fail fast.
	select {
	case err := <-ctrl:
		if err != nil {
			return err
		}
	case <-time.After(100 * time.Millisecond):
	}
	if err := a.Reload(ctx); err != nil {
		a.log.Warn("initial sync failed; retrying in the background", "err", err)
	}
	retry := time.NewTicker(30 * time.Second)
	defer retry.Stop()
	defer a.Disconnect(context.Background())
	defer a.gw.Close()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-ctrl:
			return err
		case <-retry.C:
			a.mu.Lock()
			failed := a.syncErr != nil || !a.lastSync.InSync
			a.mu.Unlock()
			if failed {
				a.Reload(ctx)
			}
		}
	}
}

// Reload syncs the entries with the cloud, then (re)connects the tunnel with
// a forward per synced, enabled entry.
func (a *Agent) Reload(ctx context.Context) error {
	rep, syncErr := entries.Sync(ctx, a.Cloud, a.Profile.Cloud.Home, a.DB, entries.Options{})
	es, err := a.DB.Entries(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.entries, a.lastSync, a.syncErr = es, rep, syncErr
	a.mu.Unlock()
	defer a.notify()
	if err := a.connect(); err != nil {
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

// connect starts the supervisor if needed and sets its forwards.
func (a *Agent) connect() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var fs []tunnel.Forward
	for _, e := range a.entries {
		if !e.Enabled || e.TunnelPort == 0 {
			continue
		}
		h, err := a.gw.Handler(gatewayEntry(e))
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
		return nil
	}
	return a.sup.SetForwards(fs)
}

// watch forwards the supervisor's status changes to subscribers.
func (a *Agent) watch(sup *tunnel.Supervisor) {
	ch, stop := sup.Subscribe()
	a.stopSub = stop
	go func() {
		for range ch {
			a.notify()
		}
	}()
}

func gatewayEntry(e store.Entry) gateway.Entry {
	g := gateway.Entry{Target: e.Target, SendProxy: e.ProxyProtocol, Private: e.Private}
	switch e.Scheme {
	case proto.SchemeHTTP:
		g.Kind = gateway.HTTP
	case proto.SchemeHTTPS:
		g.Kind = gateway.HTTPS
	default:
		g.Kind = gateway.TCP
	}
	return g
}

// Connect brings the tunnel up (Connect all).
func (a *Agent) Connect(ctx context.Context) error { return a.Reload(ctx) }

// Disconnect closes the tunnel (Disconnect all); the mappings stay.
func (a *Agent) Disconnect(context.Context) error {
	a.mu.Lock()
	sup, stop := a.sup, a.stopSub
	a.sup, a.stopSub = nil, nil
	a.mu.Unlock()
	if sup != nil {
		stop()
		sup.Stop()
	}
	a.notify()
	return nil
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

// Status is the truth about the tunnel and every entry.
func (a *Agent) Status() control.Status {
	a.mu.Lock()
	sup, es, syncErr := a.sup, a.entries, a.syncErr
	a.mu.Unlock()
	st := control.Status{Profile: a.Profile.Dir, Home: a.Profile.Cloud.Home, Cloud: a.Profile.Cloud.URL,
		Tunnel: control.TunnelStatus{State: "stopped", LastError: "disconnected"}}
	var ts tunnel.Status
	if sup != nil {
		ts = sup.Status()
		st.Tunnel = control.TunnelStatus{State: ts.State.String(), Since: ts.Since, Attempts: ts.Attempts}
		if ts.LastError != nil {
			st.Tunnel.LastError = ts.LastError.Error()
		}
	}
	if syncErr != nil {
		st.Tunnel.LastError = "sync: " + syncErr.Error()
	}
	for _, e := range es {
		f := control.ForwardStatus{Entry: e.ID, Public: e.Public(), Target: e.Target, TunnelPort: e.TunnelPort, Error: e.SyncError, LocalUp: listening(e.Target)}
		if fs, ok := ts.Forward(e.TunnelPort); ok && sup != nil {
			f.Up = fs.Up
			if fs.LastError != nil && f.Error == "" {
				f.Error = fs.LastError.Error()
			}
		}
		if !e.Enabled {
			f.Error = "closed"
		}
		st.Forwards = append(st.Forwards, f)
	}
	return st
}

// listening reports whether something accepts connections at target.
func listening(target string) bool {
	c, err := net.DialTimeout("tcp", target, 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
