package serve

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"homeport.dev/cloud/internal/shaper"
	"homeport.dev/cloud/internal/store"
)

// buildShaping prepares the bandwidth shaper over the database's limits;
// nothing reaches the kernel until Run.
func (a *App) buildShaping(reg prometheus.Registerer) error {
	l := a.Config.Layout
	s, err := shaper.New(shaper.Options{
		Device: a.Config.ShapeDev,
		Ports:  shaper.Ports{Base: l.TunnelBase, Block: l.TunnelBlock, Slots: l.Slots},
		Source: a.limits, Log: a.log, Registry: reg,
	})
	a.Shaper = s
	return err
}

// limits lists every limited home, the shaper's desired state.
func (a *App) limits(ctx context.Context) ([]shaper.Limit, error) {
	var hs []store.Home
	err := a.DB.WithContext(ctx).Select("slot", "slug", "bandwidth_limit_kbps").
		Where("bandwidth_limit_kbps IS NOT NULL").Order("slot").Find(&hs).Error
	if err != nil {
		return nil, err
	}
	out := make([]shaper.Limit, 0, len(hs))
	for _, h := range hs {
		out = append(out, shaper.Limit{Slot: h.Slot, Kbps: *h.BandwidthLimitKbps, Home: h.Slug})
	}
	return out, nil
}

// startShaping applies the database's limits before the API serves, so a
// cloud that cannot shape says so at once (in the log and in readyz), then
// keeps reconciling them until ctx ends; wg waits for the loop.
func (a *App) startShaping(ctx context.Context, wg *sync.WaitGroup) {
	a.Shaper.Reconcile(ctx) // an error is logged by the shaper and reported by readyz
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.Shaper.Run(ctx, a.Config.ReconcileInterval)
	}()
}

// shapeHome makes tc follow a committed change of h: a limit set, changed
// or cleared, or the home released.
func (a *App) shapeHome(ctx context.Context, h store.Home) {
	if err := a.Shaper.Apply(ctx, h.Slug, h.Slot); err != nil {
		a.log.Warn("bandwidth limit of a changed home not applied yet", "home", h.Slug, "slot", h.Slot, "err", err)
	}
}

// limitsAvailable tells the homes service whether a new limit would be
// enforced.
func (a *App) limitsAvailable() error { return a.Shaper.Available() }
