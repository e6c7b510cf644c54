package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"homeport.dev/cloud/internal/haproxy"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// replaceAbove is the number of differences in one map from which a full
// versioned replace (prepare, bulk add, commit) beats single commands.
const replaceAbove = 64

// Options configure a Reconciler.
type Options struct {
	DB     *store.DB
	MapDir string
	// Client talks to HAProxy; nil when HAProxy is off (map files only).
	Client *haproxy.Client
	// Mode is reported by the admin view: managed, external or off.
	Mode     string
	Log      *slog.Logger
	Registry prometheus.Registerer
}

// Reconciler pushes the database's routes into HAProxy.
type Reconciler struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex // serialises every write to HAProxy and to the map files
	live    State      // what HAProxy has after our last successful write; nil = unknown
	lastErr error
	// noRaw: HAProxy runs a configuration from before raw.map (an external
	// one not restarted since the upgrade). The other maps are kept right;
	// readyz says what to do.
	noRaw bool

	kick       chan struct{}
	repairs    prometheus.Counter
	syncErrors prometheus.Counter
}

// New returns a reconciler; call Run to start its loop.
func New(o Options) *Reconciler {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	r := &Reconciler{
		o: o, log: o.Log.With("component", "reconcile"), kick: make(chan struct{}, 1),
		repairs:    prometheus.NewCounter(prometheus.CounterOpts{Name: "homeport_haproxy_repairs_total", Help: "Map entries the periodic reconcile found drifted and repaired."}),
		syncErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "homeport_haproxy_sync_errors_total", Help: "Failed attempts to push routes to HAProxy."}),
	}
	if o.Registry != nil {
		o.Registry.MustRegister(r.repairs, r.syncErrors)
	}
	return r
}

// Kick asks the loop for a full reconcile soon (a home was released, HAProxy
// restarted). It never blocks.
func (r *Reconciler) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run reconciles at start, on every Kick, every interval, and every second
// while HAProxy is unreachable, until ctx ends.
func (r *Reconciler) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	r.Kick()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-t.C:
		case <-retry.C:
			if r.Check(ctx) == nil {
				continue
			}
		}
		if n, err := r.Full(ctx); err != nil {
			r.log.Warn("reconcile failed; the API keeps accepting changes and they apply once HAProxy is back", "err", err)
		} else if n > 0 {
			r.log.Info("reconcile repaired drift", "entries", n)
		}
	}
}

// WriteFiles writes the map files from the database without touching
// HAProxy: a managed HAProxy needs them before it can start.
func (r *Reconciler) WriteFiles(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	desired, err := r.desired(ctx)
	if err != nil {
		return err
	}
	return r.writeFiles(desired)
}

// Full writes the map files from the database, then compares every map
// HAProxy holds with them and repairs the differences. It returns how many
// entries it repaired.
func (r *Reconciler) Full(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	desired, err := r.desired(ctx)
	if err != nil {
		return 0, err
	}
	if err := r.writeFiles(desired); err != nil {
		return 0, r.fail(err)
	}
	if r.o.Client == nil {
		r.live, r.lastErr = desired, nil
		return 0, nil
	}
	live, err := r.show(ctx)
	if err != nil {
		return 0, r.fail(err)
	}
	desired = r.applicable(desired)
	ops := Diff(live, desired)
	if err := r.apply(ctx, live, desired, ops); err != nil {
		return 0, r.fail(err)
	}
	r.live, r.lastErr = desired, nil
	if r.noRaw {
		r.lastErr = errNoRaw
	}
	r.repairs.Add(float64(len(ops)))
	return len(ops), nil
}

var errNoRaw = errors.New("HAProxy's configuration has no raw map (it predates proxy_protocol): mappings with proxy_protocol off still get the PROXY header; restart HAProxy so it loads the haproxy.cfg the cloud rendered")

// applicable is desired without what HAProxy cannot hold: the raw map,
// while it runs a configuration from before it.
func (r *Reconciler) applicable(desired State) State {
	if !r.noRaw {
		return desired
	}
	out := State{}
	for m, kv := range desired {
		out[m] = kv
	}
	out[haproxy.MapRaw] = map[string]string{}
	return out
}

// Changed applies the routes of mappings that were just created or deleted,
// synchronously, so a route is live when the API call returns. What it
// applies is the difference between HAProxy (as last written) and the
// database now, never the reported change itself: two changes of one host
// that race (a delete and a create) may arrive here in either order and
// still leave HAProxy as the database says. When HAProxy cannot take it,
// the change waits in the database for the loop.
func (r *Reconciler) Changed(ctx context.Context, added, removed []store.Mapping) {
	routed := func(m store.Mapping) bool { _, _, ok := route(m); return ok }
	if !slices.ContainsFunc(added, routed) && !slices.ContainsFunc(removed, routed) {
		return // private mappings only
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Files first: a restart of HAProxy must never lose an applied route.
	desired, err := r.desired(ctx)
	if err == nil {
		err = r.writeFiles(desired)
	}
	desired = r.applicable(desired)
	if err == nil && r.o.Client != nil && r.live != nil {
		err = r.apply(ctx, r.live, desired, Diff(r.live, desired))
	}
	if err != nil || r.live == nil {
		if err != nil {
			r.fail(err)
		}
		r.Kick()
		return
	}
	r.live = desired
}

func (r *Reconciler) fail(err error) error {
	r.lastErr, r.live = err, nil
	r.syncErrors.Inc()
	return err
}

// Check reports whether HAProxy holds the database's routes as far as the
// reconciler knows: nil, or the last error (readyz shows it).
func (r *Reconciler) Check(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.o.Client == nil {
		return nil // HAProxy off: nothing to be ready
	}
	if errors.Is(r.lastErr, errNoRaw) {
		return r.lastErr // every other route is applied
	}
	if r.lastErr != nil {
		return fmt.Errorf("routes not applied: %w", r.lastErr)
	}
	if r.live == nil {
		return errors.New("routes not applied yet")
	}
	return nil
}

// desired derives the routes from the mappings of active accounts: a
// deactivated account's names get the same answer as unknown ones, and are
// back, unchanged, when the account is approved again.
func (r *Reconciler) desired(ctx context.Context) (State, error) {
	var ms []store.Mapping
	err := r.o.DB.WithContext(ctx).
		Select("mappings.scheme", "mappings.host", "mappings.public_port", "mappings.tunnel_port", "mappings.private", "mappings.proxy_protocol").
		Joins("JOIN homes ON homes.id = mappings.home_id").
		Joins("JOIN users ON users.id = homes.user_id").
		Where("users.active = ?", true).
		Find(&ms).Error
	if err != nil {
		return nil, err
	}
	return Desired(ms), nil
}

func (r *Reconciler) writeFiles(s State) error {
	if err := os.MkdirAll(r.o.MapDir, 0o750); err != nil {
		return err
	}
	maps := map[haproxy.Map][]haproxy.Entry{}
	for m, kv := range s {
		maps[m] = entries(kv)
	}
	return haproxy.WriteMaps(r.o.MapDir, maps)
}

func (r *Reconciler) show(ctx context.Context) (State, error) {
	live := emptyState()
	noRaw := false
	for _, m := range haproxy.Maps() {
		es, err := r.o.Client.ShowMap(ctx, haproxy.MapPath(r.o.MapDir, m))
		if m == haproxy.MapRaw && errors.Is(err, haproxy.ErrUnknownMap) {
			noRaw = true
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			live[m][e.Key] = e.Value
		}
	}
	if noRaw && !r.noRaw {
		r.log.Warn(errNoRaw.Error())
	}
	r.noRaw = noRaw
	return live, nil
}

// apply repairs each map with single commands, or with one atomic versioned
// replace when it differs in many entries. The raw map goes first, so a new
// route to a plain `ssh -R` target never carries a PROXY header, not even
// for its first connection.
func (r *Reconciler) apply(ctx context.Context, live, desired State, ops []Op) error {
	perMap := map[haproxy.Map][]Op{}
	for _, op := range ops {
		perMap[op.Map] = append(perMap[op.Map], op)
	}
	order := append([]haproxy.Map{haproxy.MapRaw}, slices.DeleteFunc(haproxy.Maps(), func(m haproxy.Map) bool { return m == haproxy.MapRaw })...)
	for _, m := range order {
		mops := perMap[m]
		if len(mops) == 0 {
			continue
		}
		if len(mops) > replaceAbove {
			if err := r.o.Client.ReplaceMap(ctx, haproxy.MapPath(r.o.MapDir, m), entries(desired[m])); err != nil {
				return err
			}
			continue
		}
		if err := r.applyOps(ctx, mops); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) applyOps(ctx context.Context, ops []Op) error {
	c := r.o.Client
	for _, op := range ops {
		name := haproxy.MapPath(r.o.MapDir, op.Map)
		var err error
		switch {
		case op.Value == "":
			err = c.DelMap(ctx, name, op.Key)
			if errors.Is(err, haproxy.ErrNotFound) {
				err = nil
			}
		case op.Had:
			err = c.SetMap(ctx, name, op.Key, op.Value)
		default:
			err = c.AddMap(ctx, name, op.Key, op.Value)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", op.Map, op.Key, err)
		}
	}
	return nil
}

// Routes reports HAProxy's live maps next to the database's desired state.
func (r *Reconciler) Routes(ctx context.Context) (proto.RoutesReport, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	desired, err := r.desired(ctx)
	if err != nil {
		return proto.RoutesReport{}, err
	}
	rep := proto.RoutesReport{HAProxy: r.o.Mode}
	var live State
	if r.o.Client != nil {
		if live, err = r.show(ctx); err != nil {
			rep.Error = "HAProxy unreachable: " + err.Error()
			live = emptyState()
		}
	} else {
		live = desired // off: the map files are the whole data plane
	}
	rep.Routes = Report(live, desired)
	rep.InSync = rep.Error == "" && len(Diff(live, desired)) == 0
	return rep, nil
}
