// Package serve wires the cloud together: it opens the database, builds the
// services, and runs the API (and, as later parts land, the SSH endpoint and
// the data plane) until its context ends.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/api"
	"homeport.dev/cloud/internal/apitls"
	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/budget"
	"homeport.dev/cloud/internal/certorders"
	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/domains"
	"homeport.dev/cloud/internal/edges"
	"homeport.dev/cloud/internal/haproxy"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/mappings"
	"homeport.dev/cloud/internal/ratelimit"
	"homeport.dev/cloud/internal/reconcile"
	"homeport.dev/cloud/internal/shaper"
	"homeport.dev/cloud/internal/sshd"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/cloud/internal/traffic"
	"homeport.dev/cloud/internal/web"
	"homeport.dev/proto"
)

// App is a wired cloud.
type App struct {
	Config   config.Config
	DB       *store.DB
	Accounts *account.Service
	Homes    *homes.Service
	Domains  *domains.Service
	Mappings *mappings.Service
	SSH      *sshd.Server
	Traffic  *traffic.Recorder // the recent history of SSH's counters, for dashboards and /metrics
	Routes   *reconcile.Reconciler
	Edges    *edges.Registry  // this node's edge and the others (edges.go)
	Bus      *edges.Bus       // changes to and from the other nodes
	HAProxy  *haproxy.Process // nil unless managed
	Shaper   *shaper.Shaper
	API      *api.Server
	TLS      *apitls.Server // the cloud's own HTTPS; nil when off
	log      *slog.Logger

	// edgeChannels is how many channels all homes may hold together
	// (edgeBudget); HAProxy's idle pool to homes takes a share of it.
	edgeChannels int

	wrapSSH func(net.Listener) net.Listener // tests: a listener that fails

	// streams ends when Run's context does: the web UI's live streams stop,
	// so the HTTP servers' graceful shutdown need not wait for them.
	streams    context.Context
	endStreams context.CancelFunc
}

// New opens the state in cfg.Data and builds every service.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	if err := store.SecureDir(cfg.Data); err != nil { // the host key and certificates, whichever the database
		return nil, err
	}
	db, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, DB: db, log: log}
	if err := a.build(); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) build() error {
	cfg := a.Config
	hostKey, err := sshd.LoadOrCreateHostKey(cfg.HostKeyPath())
	if err != nil {
		return err
	}
	if a.Accounts, err = account.New(a.DB); err != nil {
		return err
	}
	a.buildEdges(sshd.AuthorizedKey(hostKey))
	if a.Homes, err = homes.New(a.DB, homes.Options{Layout: cfg.Layout, HomesPerUser: cfg.HomesPerUser, Changed: a.homeChanged, LimitsAvailable: a.limitsAvailable,
		PickEdge: a.Edges.Pick, EdgeUp: a.Edges.Check}); err != nil {
		return err
	}
	a.Domains = domains.New(a.DB, domains.NewReserved(cfg.PublicHost, cfg.APIHost, cfg.SharedDomain, cfg.ReservedDomains), cfg.DomainsPerHome)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.buildDataPlane(reg)
	if err := a.buildShaping(reg); err != nil {
		return err
	}
	if a.Mappings, err = mappings.New(a.DB, a.Domains, mappings.Options{
		Layout: cfg.Layout, PerHome: cfg.MappingsPerHome, Live: a.mappingState,
		Changed: func(added, removed []store.Mapping) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			a.Routes.Changed(ctx, added, removed)
			a.publishRoutes(ctx, added, removed)
		},
	}); err != nil {
		return err
	}
	a.SSH = sshd.New(sshd.Options{
		HostKey: hostKey, Homes: a.Homes, Log: a.log, Registry: reg,
		Budget: a.edgeBudget(), ConnsPerHome: cfg.Limits.ConnsPerHome, MaxConnsPerIP: cfg.Limits.ConnsPerIP,
		RequestRate: cfg.Limits.RequestRate, OpenRate: cfg.Limits.OpenRate,
		OwnerActive: a.Accounts.Active, Edge: cfg.Edge, EdgeWhere: a.Edges.Where, HeaderlessHTTP: cfg.ReuseHomeConnections,
		Audit: audit.NewEvents(a.DB, time.Minute, a.log),
		AllowDirect: func(ctx context.Context, h store.Home, port int) bool {
			return a.Mappings.PrivateForUser(ctx, h.UserID, port)
		},
		PublicPort: func(ctx context.Context, h store.Home, port int) bool {
			return a.Mappings.PublicOnPort(ctx, h.ID, port)
		},
		SpareChannels: cfg.Limits.SpareChannels,
	})
	a.Traffic = traffic.New(traffic.Options{Registry: reg})
	a.streams, a.endStreams = context.WithCancel(context.Background())
	limiter := ratelimit.New(cfg.AuthRate, time.Minute)
	writes := ratelimit.New(cfg.WriteRate, time.Minute)
	certs := certorders.New(a.DB, certorders.Options{Shared: cfg.SharedDomain, Log: a.log, Registry: reg})
	a.API = api.New(api.Deps{
		DB: a.DB, Accounts: a.Accounts, Homes: a.Homes, Domains: a.Domains, Mappings: a.Mappings, Certificates: certs,
		SSH:            proto.SSHEndpoint{Host: cfg.PublicHost, Port: cfg.SSHPort(), HostKey: sshd.AuthorizedKey(hostKey)},
		PublicHTTPPort: addrPort(cfg.HTTPAddr), PublicHTTPSPort: cfg.PublicHTTPSPort,
		Edges: a.Edges, Limiter: limiter, Writes: writes, Log: a.log, Registry: reg, Routes: a.Routes, AllowedHosts: []string{cfg.APIHost, cfg.PublicHost},
		Signup: cfg.Signup, PublicURL: a.PublicURL(),
		Checks: map[string]func(context.Context) error{"haproxy": a.Routes.Check, "shaper": a.Shaper.Check, "ssh": a.SSH.Check},
	})
	if err := web.Register(a.API.Echo(), web.Deps{
		Accounts: a.Accounts, Homes: a.Homes, Domains: a.Domains, Mappings: a.Mappings,
		SSH: a.API.SSH, Edges: a.Edges, Limiter: limiter, Writes: writes, Log: a.log, AllowedHosts: a.API.AllowedHosts,
		Secure: cfg.TLS.On(), CloudURL: a.PublicURL(), SharedDomain: cfg.SharedDomain,
		Live: a.SSH, Traffic: a.Traffic, Routes: a.Routes.Routes, Shaping: a.Shaper.Available, Certificates: certs.RecentByHome, Done: a.streams.Done(),
		Signup: cfg.Signup, DB: a.DB,
	}); err != nil {
		return err
	}
	if err := a.buildHTTPS(); err != nil {
		return err
	}
	return nil
}

// edgeBudget raises the open-files limit as far as it goes and sizes the
// channel budget of all homes together below it, keeping a reserve for the
// API, the database, HAProxy's runtime socket and new logins.
func (a *App) edgeBudget() *budget.Ledger {
	cfg := a.Config
	files, err := budget.RaiseFileLimit()
	if err != nil {
		a.log.Warn("cannot raise the open-files limit; tunnels get a smaller share", "limit", files, "err", err)
	}
	share := budget.EdgeShare(files, cfg.Layout.Slots, cfg.Layout.TunnelBlock, cfg.Limits.PendingPerHome, cfg.Limits.ConnsPerIP)
	a.edgeChannels = share
	if need := cfg.Layout.Slots * cfg.Limits.ChannelsPerHome; share < need {
		a.log.Warn("the open-files limit cannot hold every home at its channel limit: raise LimitNOFILE (systemd) or ulimits nofile (compose)",
			"open_files", files, "edge_channels", share, "homes_at_limit_need", need)
	}
	return budget.New(budget.Limits{
		ChannelsPerHome: cfg.Limits.ChannelsPerHome, ChannelsPerConn: cfg.Limits.ChannelsPerConn,
		PendingPerHome: cfg.Limits.PendingPerHome, Total: share,
	})
}

// homeChanged makes the live data plane follow a committed home change: a
// released home or a replaced key loses its SSH connection at once, and tc
// follows its bandwidth limit.
func (a *App) homeChanged(h store.Home) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.followHome(ctx, h)
	a.publishHome(ctx, h)
}

// followHome is homeChanged on this node (the change may come from another:
// edges.go).
func (a *App) followHome(ctx context.Context, h store.Home) {
	// A release (or a move to another edge) removes many routes at once:
	// repair by full comparison, before the connection goes, so no visitor
	// is routed to a tunnel port nothing serves.
	if _, err := a.Routes.Full(ctx); err != nil {
		a.log.Warn("routes of a changed home not applied yet", "home", h.Slug, "err", err)
	}
	if a.SSH != nil {
		a.SSH.Revalidate(ctx, h.ID)
	}
	a.shapeHome(ctx, h)
}

// mappingState is a mapping's live state: up when its home is connected and
// forwards the mapping's tunnel port; port_in_use when it cannot, because
// another process holds that port.
func (a *App) mappingState(m store.Mapping) string {
	switch {
	case a.SSH == nil || !a.SSH.Connected(m.HomeID):
		return mappings.StateNoTunnel
	case a.SSH.ForwardUp(m.HomeID, m.TunnelPort):
		return mappings.StateUp
	case portHeld(m.TunnelPort):
		return mappings.StatePortInUse
	}
	return mappings.StateNoForward
}

// Close releases the database.
func (a *App) Close() error { return a.DB.Close() }

// Addrs are the addresses the cloud listens on once ready.
type Addrs struct {
	API, SSH net.Addr
	TLS      net.Addr // the cloud's own HTTPS listener (for HAProxy); nil when HTTPS is off
	Metrics  net.Addr // nil when --metrics-addr is off
}

// Run serves until ctx ends, then shuts down gracefully. ready, if not nil,
// is called once every listener accepts connections.
func (a *App) Run(ctx context.Context, ready func(Addrs)) error {
	// Names stored before a rule forbade them stay (and keep routing), but
	// every start names them; `cloud check` fails on them.
	if vs, err := a.Domains.Violations(ctx); err == nil {
		for _, v := range vs {
			a.log.Warn("a stored name breaks the naming rules: delete it (and its mappings) or ask the owner to", "home", v.Home, "kind", v.What, "name", v.Name, "err", v.Err)
		}
	}
	ln, err := net.Listen("tcp", a.Config.APIAddr)
	if err != nil {
		return fmt.Errorf("API listen on %s: %w (is another cloud running? choose another --api-addr)", a.Config.APIAddr, err)
	}
	// The API's share of the open-files reserve: beyond it, new clients
	// wait in the kernel's backlog instead of taking the edge's descriptors.
	ln = netutil.LimitListener(ln, budget.APIConns)
	srv := &http.Server{
		Handler:           a.API,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	sshLn, err := net.Listen("tcp", a.Config.SSHAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("SSH listen on %s: %w (choose another --ssh-addr)", a.Config.SSHAddr, err)
	}
	if a.wrapSSH != nil {
		sshLn = a.wrapSSH(sshLn)
	}
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 5)
	var wg sync.WaitGroup
	// On every return, an error one included: stop what was started, then
	// wait for it (waiting first would wait forever).
	defer func() {
		cancel()
		wg.Wait()
	}()
	if err := a.startDataPlane(ctx, &wg, errc); err != nil {
		ln.Close()
		sshLn.Close()
		return err
	}
	a.startShaping(ctx, &wg)
	if err := a.startEdges(ctx, &wg, sshLn.Addr()); err != nil {
		ln.Close()
		sshLn.Close()
		return err
	}
	context.AfterFunc(ctx, a.endStreams)
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.Traffic.Run(ctx, a.SSH.Counts)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Deactivation takes a user's homes offline, whichever process made it
		// (API, web UI, the `cloud users` CLI): connections closed, routes withdrawn.
		a.Accounts.WatchInactive(ctx, 250*time.Millisecond, func(inactive []uint64, changed bool) {
			a.SSH.CloseUsers(inactive...)
			if changed {
				a.Routes.Kick()
			}
		})
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		audit.Keep(ctx, a.DB, a.Config.AuditRetention, a.log)
	}()
	extra, err := a.startHTTPS(ctx, &wg, errc)
	if err != nil {
		ln.Close()
		sshLn.Close()
		return err
	}
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- a.SSH.Serve(ctx, sshLn) }()
	a.log.Info("cloud listening", "api", ln.Addr().String(), "ssh", sshLn.Addr().String())
	if ready != nil {
		ready(Addrs{API: ln.Addr(), SSH: sshLn.Addr(), TLS: extra.TLS, Metrics: extra.Metrics})
	}
	select {
	case err := <-errc:
		srv.Close()
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// addrPort is the port of a host:port address, 0 when it has none.
func addrPort(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return n
}
