package serve

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"homeport.dev/cloud/internal/edges"
	"homeport.dev/cloud/internal/store"
)

// Several cloud nodes may share one PostgreSQL database (--edge NAME): every
// node serves the API and web UI; each edge's HAProxy, SSH endpoint and
// shaper serve the homes assigned to it. A committed change is applied
// where it was made and NOTIFYed to the others (edges.Bus), which apply it
// within milliseconds; the periodic reconcile stays the safety net.

// buildEdges makes the edge registry and the change bus; hostKey is this
// node's SSH host key in authorized_keys form.
func (a *App) buildEdges(hostKey string) {
	cfg := a.Config
	a.Bus = edges.NewBus(a.DB, cfg.DBPath(), a.log)
	a.Edges = edges.New(a.DB, store.Edge{
		Name: cfg.Edge, SSHHost: cfg.PublicHost, SSHPort: cfg.SSHPort(), HostKey: hostKey,
		HTTPAddr: cfg.HTTPAddr, HTTPSAddr: cfg.HTTPSAddr,
	}, func() int { return a.SSH.Load() }, a.log)
}

// startEdges registers this edge (with the SSH port it listens on), then
// heartbeats and applies the other nodes' changes until ctx ends.
func (a *App) startEdges(ctx context.Context, wg *sync.WaitGroup, ssh net.Addr) error {
	_, port, _ := net.SplitHostPort(ssh.String())
	p, _ := strconv.Atoi(port)
	if err := a.Edges.Register(ctx, p); err != nil {
		return err
	}
	if a.Edges.Name() == "" && a.Bus.On() {
		if list, err := a.Edges.List(ctx); err == nil && len(list) > 0 {
			a.log.Warn("this database has edges but this node runs without --edge: it routes and accepts every home; give it --edge NAME", "edges", len(list))
		}
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		a.Edges.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		a.Bus.Listen(ctx, func(n edges.Notice) { a.apply(ctx, n) })
	}()
	return nil
}

// apply makes this node follow a change another node committed.
func (a *App) apply(ctx context.Context, n edges.Notice) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if len(n.Mappings) > 0 {
		a.Routes.Changed(ctx, n.Store(), nil)
		if !n.Sent.IsZero() {
			a.log.Debug("route change from another node applied", "after", time.Since(n.Sent))
		}
	}
	for _, h := range n.Homes {
		a.followHome(ctx, store.Home{ID: h.ID, Slug: h.Slug, Slot: h.Slot})
	}
	if n.Full {
		a.Routes.Kick()
	}
}

// publishRoutes tells the other nodes that mappings changed (committed).
func (a *App) publishRoutes(ctx context.Context, added, removed []store.Mapping) {
	a.Bus.Publish(ctx, edges.Notice{Mappings: edges.Mappings(append(append([]store.Mapping{}, added...), removed...)...)})
}

// publishHome tells the other nodes that h changed (committed).
func (a *App) publishHome(ctx context.Context, h store.Home) {
	a.Bus.Publish(ctx, edges.Notice{Homes: []edges.ChangedHome{{ID: h.ID, Slug: h.Slug, Slot: h.Slot}}})
}
