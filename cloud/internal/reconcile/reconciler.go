package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

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
	// Edge limits the routes to the homes of this edge (cloud serve
	// --edge): each edge's HAProxy holds its own homes' routes only. ""
	// routes every home.
	Edge string
}

// flushDelay is how long a change may wait before its map file is
// rewritten: changes in that window cost one rewrite of each touched map.
// HAProxy already routes them (the runtime API is synchronous); the file is
// only read when HAProxy restarts, and the cloud flushes it before it
// restarts HAProxy itself.
const flushDelay = 500 * time.Millisecond

// Reconciler pushes the database's routes into HAProxy. It is the only
// writer of HAProxy's maps and of the map files: the per-change path
// (Changed) touches only the entries of the changed mappings, the periodic
// pass (Full) compares everything.
type Reconciler struct {
	o   Options
	log *slog.Logger

	files sync.Mutex // serialises map-file writes; taken before mu
	mu    sync.Mutex // serialises every write to HAProxy and to want/live
	// want is the database's routes as last read (in full by Full, per
	// entry by Changed): what the map files must hold. nil until the first
	// full read.
	want  State
	dirty map[haproxy.Map]bool // maps whose file lags want
	live  State                // what HAProxy has after our last successful write; nil = unknown
	// lastErr is the last failure to reach HAProxy.
	lastErr error
	// noRaw: HAProxy runs a configuration from before raw.map (an external
	// one not restarted since the upgrade). The other maps are kept right;
	// readyz says what to do.
	noRaw bool

	kick       chan struct{}
	written    chan struct{} // a map file became dirty
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
		written: make(chan struct{}, 1), dirty: map[haproxy.Map]bool{},
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
// while HAProxy is unreachable, and rewrites the map files a change made
// stale within flushDelay, until ctx ends (flushing them a last time).
func (r *Reconciler) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	var flush <-chan time.Time
	defer func() {
		if err := r.Flush(); err != nil {
			r.log.Warn("map files not written at stop; the next start rewrites them from the database", "err", err)
		}
	}()
	r.Kick()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.written:
			if flush == nil {
				flush = time.After(flushDelay)
			}
			continue
		case <-flush:
			flush = nil
			if err := r.Flush(); err != nil {
				r.log.Warn("map files not written; retrying", "err", err)
				flush = time.After(time.Second)
			}
			continue
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
	r.files.Lock()
	defer r.files.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	desired, err := r.desired(ctx)
	if err != nil {
		return err
	}
	return r.writeFiles(desired)
}

// Flush rewrites the map files that changes made stale since the last
// write; the others are not touched. The cloud calls it before it starts
// HAProxy again, so a restart loads every route.
func (r *Reconciler) Flush() error {
	r.files.Lock()
	defer r.files.Unlock()
	r.mu.Lock()
	stale := map[haproxy.Map][]haproxy.Entry{}
	for m := range r.dirty {
		stale[m] = entries(r.want[m])
	}
	clear(r.dirty)
	r.mu.Unlock()
	// Sorting and writing (tens of ms for 40,000 entries) happen without
	// holding up route changes.
	for m, es := range stale {
		if err := haproxy.WriteMap(r.o.MapDir, m, es); err != nil {
			r.mu.Lock()
			for m := range stale {
				r.dirty[m] = true
			}
			r.mu.Unlock()
			return err
		}
	}
	return nil
}

// Full writes the map files from the database, then compares every map
// HAProxy holds with them and applies the differences. It returns, and
// counts in homeport_haproxy_repairs_total, the entries something other
// than this reconciler changed in HAProxy (every difference when it does
// not know what HAProxy holds): database changes whose per-change push is
// still waiting for the lock are applied here too, but are no drift.
func (r *Reconciler) Full(ctx context.Context) (int, error) {
	r.files.Lock()
	defer r.files.Unlock()
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
		r.live, r.lastErr = desired.Clone(), nil
		return 0, nil
	}
	live, err := r.show(ctx)
	if err != nil {
		return 0, r.fail(err)
	}
	desired = r.applicable(desired)
	ops := Diff(live, desired)
	drifted := len(ops)
	if r.live != nil {
		drifted = len(Diff(live, r.applicable(r.live)))
	}
	if err := r.apply(ctx, live, desired, ops); err != nil {
		return 0, r.fail(err)
	}
	r.live, r.lastErr = desired.Clone(), nil
	if r.noRaw {
		r.lastErr = errNoRaw
	}
	r.repairs.Add(float64(drifted))
	return drifted, nil
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
// synchronously, so a route is live when the API call returns. Its cost does
// not grow with the number of mappings: it reads from the database only the
// entries those mappings touch, sends HAProxy one command per entry that
// differs, and leaves the rewrite of the touched map files to the loop
// (within flushDelay). What it applies is the difference between HAProxy
// (as last written) and the database now, never the reported change itself:
// two changes of one host that race (a delete and a create) may arrive here
// in either order and still leave HAProxy as the database says. When
// HAProxy cannot take it, the change waits in the database for the loop.
func (r *Reconciler) Changed(ctx context.Context, added, removed []store.Mapping) {
	keys := Touched(append(slices.Clip(added), removed...)...)
	if len(keys) == 0 {
		return // private mappings only
	}
	if !r.change(ctx, keys) {
		// HAProxy did not take it: the files are where it waits, for an
		// HAProxy that starts before the loop reaches it.
		if err := r.Flush(); err != nil {
			r.log.Warn("map files not written; the loop retries", "err", err)
		}
	}
}

// change brings the given entries in want and in HAProxy to the database's
// values; it reports whether HAProxy holds them.
func (r *Reconciler) change(ctx context.Context, keys []Key) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.want == nil {
		r.Kick() // nothing read yet: the first full pass brings it
		return true
	}
	now, err := r.desiredAt(ctx, keys)
	if err != nil {
		r.log.Warn("route change not applied yet; the loop retries", "err", err)
		r.Kick()
		return true
	}
	var ops []Op
	for _, k := range keys {
		v, ok := now[k.Map][k.Key]
		if w, had := r.want[k.Map][k.Key]; had != ok || w != v {
			if ok {
				r.want[k.Map][k.Key] = v
			} else {
				delete(r.want[k.Map], k.Key)
			}
			r.dirty[k.Map] = true
		}
		if r.live == nil || r.noRaw && k.Map == haproxy.MapRaw {
			continue
		}
		if lv, had := r.live[k.Map][k.Key]; had != ok || lv != v {
			ops = append(ops, Op{Map: k.Map, Key: k.Key, Value: v, Had: had})
		}
	}
	r.fileStale()
	if r.o.Client == nil {
		return true // HAProxy off: the loop writes the files
	}
	if r.live == nil {
		r.Kick() // HAProxy's state unknown: the loop compares it all
		return false
	}
	// The raw map first, as in apply: a new route to a plain `ssh -R`
	// target never carries a PROXY header.
	slices.SortStableFunc(ops, func(a, b Op) int {
		return cmpBool(a.Map != haproxy.MapRaw, b.Map != haproxy.MapRaw)
	})
	if err := r.applyOps(ctx, ops); err != nil {
		r.fail(err)
		r.Kick()
		return false
	}
	for _, op := range ops {
		if op.Value == "" {
			delete(r.live[op.Map], op.Key)
		} else {
			r.live[op.Map][op.Key] = op.Value
		}
	}
	return true
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// fileStale tells the loop a map file lags want.
func (r *Reconciler) fileStale() {
	if len(r.dirty) == 0 {
		return
	}
	select {
	case r.written <- struct{}{}:
	default:
	}
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

// routed selects, from the mappings of active accounts, the columns
// Desired reads: a deactivated account's names get the same answer as
// unknown ones, and are back, unchanged, when the account is approved
// again. Every route the cloud pushes is derived from this query and
// Desired, in full (desired) or for a few entries (desiredAt).
func (r *Reconciler) routed(ctx context.Context) *gorm.DB {
	q := r.o.DB.WithContext(ctx).Model(&store.Mapping{}).
		Select("mappings.scheme", "mappings.host", "mappings.public_port", "mappings.tunnel_port", "mappings.private", "mappings.proxy_protocol").
		Joins("JOIN homes ON homes.id = mappings.home_id").
		Joins("JOIN users ON users.id = homes.user_id").
		Where("users.active = ?", true)
	if r.o.Edge != "" {
		q = q.Where("homes.edge = ?", r.o.Edge)
	}
	return q
}

// desired derives every route from the database.
func (r *Reconciler) desired(ctx context.Context) (State, error) {
	var ms []store.Mapping
	if err := r.routed(ctx).Find(&ms).Error; err != nil {
		return nil, err
	}
	return Desired(ms), nil
}

// desiredAt derives the routes of the given entries only, reading just the
// mappings that can define them (by scheme and host, public port or tunnel
// port: each a unique index, so the cost does not grow with the table).
// Entries of other keys in the result are to be ignored.
func (r *Reconciler) desiredAt(ctx context.Context, keys []Key) (State, error) {
	hosts := map[string][]string{} // scheme -> hosts
	var ports []int
	for _, k := range keys {
		switch k.Map {
		case haproxy.MapHTTP:
			hosts[proto.SchemeHTTP] = append(hosts[proto.SchemeHTTP], k.Key)
		case haproxy.MapHTTPS:
			hosts[proto.SchemeHTTPS] = append(hosts[proto.SchemeHTTPS], k.Key)
		default: // tcp: a public port; raw: a tunnel port
			p, err := strconv.Atoi(k.Key)
			if err != nil {
				return nil, fmt.Errorf("map %s: key %q is not a port", k.Map, k.Key)
			}
			ports = append(ports, p)
		}
	}
	db := r.o.DB.WithContext(ctx)
	var which *gorm.DB // the OR of one indexed condition per kind of key
	or := func(cond *gorm.DB) {
		if which == nil {
			which = cond
		} else {
			which = which.Or(cond)
		}
	}
	for _, scheme := range []string{proto.SchemeHTTP, proto.SchemeHTTPS} {
		if len(hosts[scheme]) > 0 {
			or(db.Where("mappings.scheme = ? AND mappings.host IN ?", scheme, hosts[scheme]))
		}
	}
	if len(ports) > 0 {
		or(db.Where("mappings.public_port IN ? OR mappings.tunnel_port IN ?", ports, ports))
	}
	var ms []store.Mapping
	if err := r.routed(ctx).Where(which).Find(&ms).Error; err != nil {
		return nil, err
	}
	return Desired(ms), nil
}

// writeFiles writes every map file from s, which becomes want.
func (r *Reconciler) writeFiles(s State) error {
	r.want = s.Clone()
	clear(r.dirty)
	err := os.MkdirAll(r.o.MapDir, 0o750)
	if err == nil {
		maps := map[haproxy.Map][]haproxy.Entry{}
		for m, kv := range s {
			maps[m] = entries(kv)
		}
		err = haproxy.WriteMaps(r.o.MapDir, maps)
	}
	if err != nil {
		for _, m := range haproxy.Maps() {
			r.dirty[m] = true // the loop retries
		}
		r.fileStale()
	}
	return err
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
