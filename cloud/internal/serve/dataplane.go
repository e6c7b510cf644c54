package serve

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/haproxy"
	"homeport.dev/cloud/internal/reconcile"
)

// buildDataPlane prepares the reconciler and, in managed mode, the HAProxy
// child; nothing starts until Run.
func (a *App) buildDataPlane(reg prometheus.Registerer) {
	cfg := a.Config
	var client *haproxy.Client
	switch cfg.HAProxy {
	case config.HAProxyManaged:
		client = &haproxy.Client{SocketPath: cfg.HAProxySocketPath()}
		a.HAProxy = haproxy.NewProcess(haproxy.ProcessConfig{
			ConfigPath: filepath.Join(cfg.HAProxyDir(), "haproxy.cfg"),
			SocketPath: cfg.HAProxySocketPath(),
			Logger:     a.log,
			OnReady: func(restarts int) {
				if restarts > 0 {
					a.log.Warn("haproxy restarted; re-pushing routes", "restarts", restarts)
				}
				a.Routes.Kick()
			},
			// Route changes reach the map files within a moment; a restart
			// of HAProxy must not wait for that moment to load them.
			BeforeStart: func() {
				if err := a.Routes.Flush(); err != nil {
					a.log.Warn("map files not up to date before starting haproxy; the reconcile pushes the rest once it answers", "err", err)
				}
			},
		})
	case config.HAProxyExternal:
		client = &haproxy.Client{SocketPath: cfg.HAProxySocketPath()}
	}
	a.Routes = reconcile.New(reconcile.Options{
		DB: a.DB, MapDir: cfg.HAProxyMapDir(), Client: client, Mode: cfg.HAProxy, Log: a.log, Registry: reg,
		Edge: cfg.Edge, // an edge's HAProxy holds its own homes' routes only
	})
}

// startDataPlane writes the map files, starts the managed HAProxy (if any)
// and the reconcile loop. Both stop when ctx ends; wg waits for them.
func (a *App) startDataPlane(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) error {
	cfg := a.Config
	a.warnPorts()
	if err := a.Routes.WriteFiles(ctx); err != nil {
		return fmt.Errorf("write HAProxy map files: %w", err)
	}
	// External mode gets the same rendered config, for an HAProxy that
	// shares the data volume (compose.yaml).
	if cfg.HAProxy != config.HAProxyOff {
		tcpHost, _, _ := net.SplitHostPort(cfg.HTTPSAddr)
		err := haproxy.WriteConfig(filepath.Join(cfg.HAProxyDir(), "haproxy.cfg"), haproxy.Params{
			HTTPAddr: cfg.HTTPAddr, HTTPSAddr: cfg.HTTPSAddr, HTTPSPort: cfg.PublicHTTPSPort, TCPHost: tcpHost, TCPPorts: cfg.TCPPorts,
			TunnelPorts: cfg.Layout.TunnelRange(), MapDir: cfg.HAProxyMapDir(), SocketPath: cfg.HAProxySocketPath(),
			APIHost: a.routedAPIHost(), APITLSAddr: a.routedTLSAddr(),
			RouteMaxConn: cfg.Limits.RouteMaxConn, FrontendMaxConn: cfg.Limits.FrontendMaxConn,
			ReuseHomeConnections: cfg.ReuseHomeConnections, IdlePoolMax: haproxy.IdlePoolFor(a.edgeChannels),
		})
		if err != nil {
			return fmt.Errorf("write HAProxy config: %w", err)
		}
	}
	if a.HAProxy != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.HAProxy.Run(ctx); err != nil {
				errc <- fmt.Errorf("haproxy: %w (install it with apt-get install haproxy, or run with --haproxy off)", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.Routes.Run(ctx, cfg.ReconcileInterval)
	}()
	return nil
}
