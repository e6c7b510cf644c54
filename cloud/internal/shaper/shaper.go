// Package shaper enforces per-home bandwidth limits with Linux traffic
// control, over netlink (no tc binary): an HTB root qdisc on the interface
// that carries tunnel-port traffic (loopback when HAProxy runs beside the
// cloud), one class per limited home, and u32 filters that send the home's
// tunnel-port block to its class as source port (home -> visitor) and as
// destination port (visitor -> home). The layout of handles and hash tables
// is documented in layout.go.
//
// The database is the truth: a Shaper reads every limit from its Source,
// applies one home's change at once (Apply), and compares the whole kernel
// state with the Source at start and periodically (Reconcile), repairing and
// counting drift. The root qdisc exists only while some home is limited, so
// a cloud without limits leaves the interface untouched.
package shaper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Off as the device turns shaping off: limits are refused.
const Off = "off"

const (
	protocolIP = unix.ETH_P_IP
	// netlinkTimeout bounds every request to the kernel.
	netlinkTimeout = 5 * time.Second
)

// Limit is one home's limit as the database holds it.
type Limit struct {
	Slot int
	Kbps int64
	Home string // the home's slug, for logs
}

// Source lists every limited home (in the cloud: the database).
type Source func(ctx context.Context) ([]Limit, error)

// Options configure a Shaper.
type Options struct {
	// Device is the interface whose egress carries tunnel-port traffic in
	// both directions: "lo" when HAProxy is local. Off disables shaping.
	Device string
	Ports  Ports
	Source Source
	// Netns, if not zero, is the network namespace to shape instead of the
	// process's own (tests shape a namespace of their own).
	Netns    netns.NsHandle
	Log      *slog.Logger
	Registry prometheus.Registerer
}

// phase is where a Shaper stands.
type phase int

const (
	phaseOff         phase = iota // Device is Off: limits are refused, nothing to be ready for
	phasePending                  // not reconciled yet: limits wait in the database
	phaseReady                    // the kernel held the database's limits after the last change
	phaseUnavailable              // the last attempt failed: limits are refused until one succeeds
)

// Shaper keeps the kernel's classes and filters equal to the Source.
type Shaper struct {
	o    Options
	log  *slog.Logger
	kick chan struct{}

	mu     sync.Mutex // serialises every change to the kernel
	link   netlink.Link
	rooted bool // homeport's root qdisc was in place after the last change

	stateMu sync.Mutex
	phase   phase
	err     error // why unavailable

	repairs, failures prometheus.Counter
	limited           prometheus.Gauge
}

// New checks o and returns a Shaper; it touches nothing until Reconcile.
func New(o Options) (*Shaper, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Shaper{
		o: o, log: o.Log.With("component", "shaper", "dev", o.Device), kick: make(chan struct{}, 1), phase: phasePending,
		repairs:  prometheus.NewCounter(prometheus.CounterOpts{Name: "homeport_shaper_repairs_total", Help: "Classes, filters and qdiscs the reconcile found drifted from the database and repaired."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "homeport_shaper_errors_total", Help: "Failed attempts to apply bandwidth limits to the kernel."}),
		limited:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "homeport_shaper_limited_homes", Help: "Homes whose bandwidth limit the kernel enforces."}),
	}
	if o.Device == Off {
		s.phase = phaseOff
	} else if err := ValidateDevice(o.Device); err != nil {
		return nil, err
	}
	if err := o.Ports.Validate(); err != nil {
		return nil, err
	}
	if o.Source == nil {
		return nil, errors.New("shaper: no source of limits")
	}
	if o.Registry != nil {
		o.Registry.MustRegister(s.repairs, s.failures, s.limited)
	}
	return s, nil
}

// ValidateDevice checks an interface name before it reaches the kernel:
// 1..15 characters of letters, digits, '.', '-' and '_'.
func ValidateDevice(name string) error {
	if name == "" || len(name) > unix.IFNAMSIZ-1 || name == "." || name == ".." {
		return fmt.Errorf("interface name %q must be 1..%d characters", name, unix.IFNAMSIZ-1)
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("interface name %q: only letters, digits, '.', '-' and '_'", name)
		}
	}
	return nil
}

// errOff is why limits are refused when shaping is off.
var errOff = errors.New("bandwidth shaping is off on this cloud")

// Available reports whether a limit set now would be enforced: nil, or why
// not. Before the first Reconcile it is nil (limits wait in the database).
func (s *Shaper) Available() error {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	switch s.phase {
	case phaseOff:
		return errOff
	case phaseUnavailable:
		return s.err
	}
	return nil
}

// Check is the readiness check: an error while limits cannot be enforced.
// Shaping turned off has nothing to be ready for.
func (s *Shaper) Check(context.Context) error {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.phase == phaseUnavailable {
		return fmt.Errorf("unavailable: %w", s.err)
	}
	return nil
}

// Kick asks Run for a full reconcile soon. It never blocks.
func (s *Shaper) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run reconciles on every Kick and every interval until ctx ends. Call
// Reconcile once first: cloud serve does, before it serves the API.
func (s *Shaper) Run(ctx context.Context, interval time.Duration) {
	if s.o.Device == Off {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
		if n, err := s.Reconcile(ctx); err == nil && n > 0 {
			s.log.Info("reconcile repaired bandwidth shaping drift", "changes", n)
		}
	}
}

// Reconcile makes the kernel hold exactly the Source's limits, and returns
// how many objects it had to repair (also counted in the repairs metric).
func (s *Shaper) Reconcile(ctx context.Context) (int, error) {
	if s.o.Device == Off {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.state() == phasePending
	n, err := s.reconcile(ctx)
	if ctx.Err() != nil {
		return n, ctx.Err()
	}
	s.repairs.Add(float64(n))
	s.settle(err)
	if err == nil && first {
		s.log.Info("bandwidth shaping ready", "repairs", n)
	}
	return n, err
}

// Apply makes the kernel follow a committed change of the home in slot
// (limit set, changed or cleared, home released), reading its limit from
// the Source so that changes applied out of order still end right. When
// the targeted change fails it falls back to a full reconcile.
func (s *Shaper) Apply(ctx context.Context, home string, slot int) error {
	switch s.state() {
	case phaseOff, phasePending:
		return nil
	case phaseUnavailable:
		s.Kick() // the loop retries everything; readyz already says why
		return nil
	}
	if err := s.o.Ports.checkSlot(slot); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	limits, err := s.o.Source(ctx)
	if err != nil {
		return fmt.Errorf("read limits: %w", err)
	}
	want, ok := int64(0), false
	for _, l := range limits {
		if l.Slot == slot {
			want, ok = l.Kbps, true
		}
	}
	changed, targeted := false, s.rooted && len(limits) > 0
	if targeted {
		if changed, err = s.applySlot(slot, want, ok); err != nil {
			s.log.Warn("bandwidth limit change failed; reconciling everything", "home", home, "slot", slot, "err", err)
		}
	}
	if !targeted || err != nil {
		// The first limit, the last one, or a failed change: compare everything.
		var n int
		n, err = s.reconcile(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.settle(err)
		if err != nil {
			return err
		}
		changed = n > 0
	} else {
		s.limited.Set(float64(len(limits)))
	}
	switch {
	case changed && ok:
		s.log.Info("bandwidth limit applied", "home", home, "slot", slot, "kbps", want)
	case changed:
		s.log.Info("bandwidth limit removed", "home", home, "slot", slot)
	}
	return nil
}

// applySlot sets or removes one slot's class and leaves (mu held, root in
// place), and reports whether it changed anything. Both are idempotent.
func (s *Shaper) applySlot(slot int, kbps int64, limited bool) (changed bool, err error) {
	err = s.withConn(func(h *conn) error {
		idx := s.link.Attrs().Index
		leaves := s.o.Ports.leaves(slot)
		if !limited {
			for _, f := range leaves {
				err := h.FilterDel(f.toNetlink(idx))
				if err != nil && !errors.Is(err, unix.ENOENT) {
					return fmt.Errorf("delete %s: %w", f, err)
				}
				changed = changed || err == nil
			}
			err := h.ClassDel(class{handle: ClassID(slot)}.toNetlink(idx))
			if err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("delete class %s: %w", handleString(ClassID(slot)), err)
			}
			changed = changed || err == nil
			return nil
		}
		c, err := classFor(slot, kbps, netlink.Xmittime)
		if err != nil {
			return err
		}
		if err := h.ClassReplace(c.toNetlink(idx)); err != nil {
			return fmt.Errorf("set class %s: %w", handleString(c.handle), err)
		}
		changed = true
		for _, f := range leaves {
			// A leaf's content follows from its handle: one that exists is right
			// (and a tampered one is the periodic reconcile's business).
			if err := h.FilterAdd(f.toNetlink(idx)); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("add %s: %w", f, err)
			}
		}
		return nil
	})
	return changed, err
}

// reconcile compares everything and repairs it (mu held). It returns how
// many objects it changed.
func (s *Shaper) reconcile(ctx context.Context) (int, error) {
	if err := netAdmin(); err != nil {
		return 0, err
	}
	limits, err := s.o.Source(ctx)
	if err != nil {
		return 0, fmt.Errorf("read limits: %w", err)
	}
	want := s.desired(limits)
	var n int
	err = s.withConn(func(h *conn) error {
		link, err := h.LinkByName(s.o.Device)
		if err != nil {
			return fmt.Errorf("interface %s: %w", s.o.Device, err)
		}
		s.link = link
		n, err = s.sync(ctx, h, link, want)
		return err
	})
	if err == nil {
		s.limited.Set(float64(len(want.classes)))
	}
	return n, err
}

// desired turns the Source's limits into classes and leaves. A limit the
// kernel must not get (bad slot or rate, a slot twice) is logged and left
// out; the others still apply.
func (s *Shaper) desired(limits []Limit) desired {
	want := desired{structure: s.o.Ports.structure()}
	seen := map[int]bool{}
	for _, l := range limits {
		err := s.o.Ports.checkSlot(l.Slot)
		if err == nil && seen[l.Slot] {
			err = errors.New("slot limited twice")
		}
		var c class
		if err == nil {
			c, err = classFor(l.Slot, l.Kbps, netlink.Xmittime)
		}
		if err != nil {
			s.log.Error("bandwidth limit not applied", "home", l.Home, "slot", l.Slot, "kbps", l.Kbps, "err", err)
			continue
		}
		seen[l.Slot] = true
		want.classes = append(want.classes, c)
		want.leaves = append(want.leaves, s.o.Ports.leaves(l.Slot)...)
	}
	return want
}

// sync brings the root qdisc, classes and filters of link to want.
func (s *Shaper) sync(ctx context.Context, h *conn, link netlink.Link, want desired) (int, error) {
	qs, err := retryDump(func() ([]netlink.Qdisc, error) { return h.QdiscList(link) })
	if err != nil {
		return 0, fmt.Errorf("list qdiscs: %w", err)
	}
	var root netlink.Qdisc
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_ROOT {
			root = q
		}
	}
	action, err := decideRoot(root, len(want.classes) > 0, s.o.Device)
	if err != nil {
		return 0, err
	}
	n := 0
	htb := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: Root(), Parent: netlink.HANDLE_ROOT})
	switch action {
	case rootDelete, rootRecreate:
		if err := h.QdiscDel(root); err != nil && !errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("delete root qdisc: %w", err)
		}
		s.rooted = false
		n++
		if action == rootDelete {
			return n, nil
		}
		fallthrough
	case rootCreate:
		if err := h.QdiscAdd(htb); err != nil {
			return n, fmt.Errorf("add root qdisc %s htb: %w", handleString(Root()), err)
		}
		n++
	case rootNone:
		s.rooted = false
		return 0, nil
	}
	s.rooted = true
	have, err := observe(h, link)
	if err != nil {
		return n, err
	}
	p := diff(want, have)
	return n + p.changes(), s.execute(ctx, h, link.Attrs().Index, p)
}

// observe reads what the kernel holds under homeport's root qdisc.
func observe(h *conn, link netlink.Link) (observed, error) {
	var o observed
	cs, err := retryDump(func() ([]netlink.Class, error) { return h.ClassList(link, Root()) })
	if err != nil {
		return o, fmt.Errorf("list classes: %w", err)
	}
	for _, c := range cs {
		if htb, ok := c.(*netlink.HtbClass); ok && c.Attrs().Handle>>16 == rootMajor {
			o.classes = append(o.classes, htb)
		}
	}
	fs, err := retryDump(func() ([]netlink.Filter, error) { return h.FilterList(link, Root()) })
	if err != nil {
		return o, fmt.Errorf("list filters: %w", err)
	}
	// The netlink package returns u32 nodes only; tables come from a dump
	// of our own.
	if o.filters, err = retryDump(func() ([]filter, error) { return h.tables(link) }); err != nil {
		return o, fmt.Errorf("list u32 tables: %w", err)
	}
	seen := map[tp]bool{}
	for _, f := range fs {
		a := f.Attrs()
		if u, ok := f.(*netlink.U32); ok && a.Priority == filterPrio && a.Protocol == protocolIP {
			o.filters = append(o.filters, fromNetlink(u))
			continue
		}
		if t := (tp{prio: a.Priority, protocol: a.Protocol, kind: f.Type()}); !seen[t] {
			seen[t] = true
			o.others = append(o.others, t)
		}
	}
	return o, nil
}

// execute carries out p in its order, stopping at the first error or when
// ctx ends.
func (s *Shaper) execute(ctx context.Context, h *conn, idx int, p plan) error {
	step := func(what string, err error, ignore ...unix.Errno) error {
		for _, e := range ignore {
			if errors.Is(err, e) {
				err = nil
			}
		}
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	for _, c := range p.setClasses {
		if err := step("set class "+handleString(c.handle), h.ClassReplace(c.toNetlink(idx))); err != nil {
			return err
		}
	}
	for _, t := range p.dropTPs {
		f := &netlink.GenericFilter{FilterType: t.kind, FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: Root(), Priority: t.prio, Protocol: t.protocol}}
		if err := step(fmt.Sprintf("delete foreign %s filter prio %d", t.kind, t.prio), h.FilterDel(f), unix.ENOENT); err != nil {
			return err
		}
	}
	if p.rebuild {
		whole := &netlink.U32{FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: Root(), Priority: filterPrio, Protocol: protocolIP}}
		if err := step("delete u32 filters", h.FilterDel(whole), unix.ENOENT); err != nil {
			return err
		}
	}
	for _, f := range p.delFilters {
		if err := step("delete "+f.String(), h.FilterDel(f.toNetlink(idx)), unix.ENOENT); err != nil {
			return err
		}
	}
	for _, f := range p.addFilters {
		if err := step("add "+f.String(), h.FilterAdd(f.toNetlink(idx))); err != nil {
			return err
		}
	}
	for _, c := range p.delClasses {
		if err := step("delete class "+handleString(c), h.ClassDel(class{handle: c}.toNetlink(idx)), unix.ENOENT); err != nil {
			return err
		}
	}
	return nil
}

func (s *Shaper) state() phase {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	return s.phase
}

// settle records the outcome of a change, logging only when the state (or
// the reason shaping is unavailable) changes, so a cloud without
// CAP_NET_ADMIN says so once.
func (s *Shaper) settle(err error) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	was, wasErr := s.phase, s.err
	if err == nil {
		s.phase, s.err = phaseReady, nil
		if was == phaseUnavailable {
			s.log.Info("bandwidth shaping works again")
		}
		return
	}
	s.failures.Inc()
	s.phase, s.err = phaseUnavailable, err
	if was != phaseUnavailable || wasErr.Error() != err.Error() {
		s.log.Warn("bandwidth shaping unavailable: the API refuses limits until it works", "err", err)
	}
}

// withConn runs f with netlink open on the namespace to shape.
func (s *Shaper) withConn(f func(*conn) error) error {
	ns := s.o.Netns
	if ns == 0 {
		ns = netns.None()
	}
	c, err := openConn(ns, netlinkTimeout)
	if err != nil {
		return err
	}
	defer c.close()
	err = f(c)
	if errors.Is(err, unix.EPERM) {
		err = fmt.Errorf("%w (%s)", err, needNetAdmin)
	}
	return err
}

const needNetAdmin = "run cloud serve as root or give it CAP_NET_ADMIN (systemd AmbientCapabilities=CAP_NET_ADMIN, docker --cap-add NET_ADMIN)"

// netAdmin reports whether this process may change traffic control.
func netAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	if data[0].Effective&(1<<unix.CAP_NET_ADMIN) == 0 {
		return errors.New("no CAP_NET_ADMIN: " + needNetAdmin)
	}
	return nil
}

// retryDump repeats a netlink dump that changed while the kernel sent it.
func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	for try := 0; ; try++ {
		got, err := dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 3 {
			return got, err
		}
	}
}

func handleString(h uint32) string { return fmt.Sprintf("%x:%x", h>>16, h&0xffff) }
