package shaper

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// limitTable stands in for the database: the limits the shaper must
// enforce, changed by the test.
type limitTable struct {
	mu sync.Mutex
	m  map[int]int64
}

func (d *limitTable) set(slot int, kbps int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[int]int64{}
	}
	d.m[slot] = kbps
}

func (d *limitTable) clear(slot int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, slot)
}

func (d *limitTable) source(context.Context) ([]Limit, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Limit
	for _, slot := range slices.Sorted(maps.Keys(d.m)) {
		out = append(out, Limit{Slot: slot, Kbps: d.m[slot], Home: "home" + string(rune('a'+slot%26))})
	}
	return out, nil
}

var testPorts = Ports{Base: 20000, Block: 16, Slots: 10}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newShaper starts a shaper on the namespace's loopback, as a cloud
// (re)starting would: a new instance that reconciles from db.
func newShaper(t testing.TB, n *testNetns, db *limitTable, reg prometheus.Registerer) *Shaper {
	t.Helper()
	s, err := New(Options{Device: "lo", Ports: testPorts, Source: db.source, Netns: n.ns, Log: quietLog(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// kernel is what the namespace's loopback holds, as a user would read it
// with tc: the root qdisc and each class's rate.
type kernel struct {
	root    string            // "htb 4850:" or the kernel's default
	classes map[uint32]uint64 // handle -> rate, bytes/s
	filters map[uint32]filter
}

func readKernel(t testing.TB, n *testNetns) kernel {
	t.Helper()
	k := kernel{classes: map[uint32]uint64{}, filters: map[uint32]filter{}}
	qs, err := n.nl.QdiscList(n.lo)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_ROOT {
			k.root = q.Type() + " " + handleString(q.Attrs().Handle)
		}
	}
	c, err := openConn(n.ns, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	o, err := observe(c, n.lo)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range o.classes {
		k.classes[c.Handle] = c.Rate
	}
	for _, f := range o.filters {
		k.filters[f.handle] = f
	}
	return k
}

// wantKernel checks that the kernel holds exactly the classes and filters
// for limits (slot -> kbps), and nothing when there are none.
func wantKernel(t testing.TB, n *testNetns, limits map[int]int64) {
	t.Helper()
	k := readKernel(t, n)
	if len(limits) == 0 {
		if strings.HasPrefix(k.root, "htb") || len(k.classes) > 0 || len(k.filters) > 0 {
			t.Fatalf("no home is limited, but lo has root %s, classes %v, %d filters", k.root, k.classes, len(k.filters))
		}
		return
	}
	if k.root != "htb 4850:0" {
		t.Fatalf("root qdisc = %q, want htb 4850:0", k.root)
	}
	want := map[uint32]uint64{}
	for slot, kbps := range limits {
		want[ClassID(slot)] = uint64(kbps) * 125
	}
	if !maps.Equal(k.classes, want) {
		t.Fatalf("classes (handle: bytes/s) = %x, want %x", k.classes, want)
	}
	wantFilters := testPorts.structure()
	for slot := range limits {
		wantFilters = append(wantFilters, testPorts.leaves(slot)...)
	}
	for _, f := range wantFilters {
		if g, ok := k.filters[f.handle]; !ok || !f.equal(g) {
			t.Fatalf("%s: kernel has %+v (present %v), want %+v", f, g, ok, f)
		}
	}
	// Only the kernel's own root table besides.
	if len(k.filters) != len(wantFilters)+1 {
		t.Fatalf("kernel has %d u32 objects, want %d", len(k.filters), len(wantFilters)+1)
	}
}

func TestLimitsFollowTheDatabaseThroughChangesRestartsAndRelease(t *testing.T) {
	n := newTestNetns(t)
	ctx := context.Background()
	db := &limitTable{}
	s := newShaper(t, n, db, nil)
	if changes, err := s.Reconcile(ctx); err != nil || changes != 0 {
		t.Fatalf("first reconcile without limits = %d, %v", changes, err)
	}
	wantKernel(t, n, nil) // a cloud without limits leaves lo alone

	db.set(2, 5000)
	if err := s.Apply(ctx, "homec", 2); err != nil {
		t.Fatal(err)
	}
	wantKernel(t, n, map[int]int64{2: 5000})
	c := readKernel(t, n)
	var cl *netlink.HtbClass
	cs, _ := n.nl.ClassList(n.lo, Root())
	for _, k := range cs {
		if k.Attrs().Handle == ClassID(2) {
			cl = k.(*netlink.HtbClass)
		}
	}
	if cl == nil || cl.Ceil != cl.Rate || cl.Buffer != netlink.Xmittime(625000, Burst(5000)) || cl.Cbuffer != cl.Buffer {
		t.Fatalf("class of slot 2 = %+v (kernel %v); want rate = ceil and buffer = cbuffer for a %d-byte burst", cl, c.classes, Burst(5000))
	}

	db.set(5, 50000)
	if err := s.Apply(ctx, "homef", 5); err != nil {
		t.Fatal(err)
	}
	db.set(2, 100) // changed
	if err := s.Apply(ctx, "homec", 2); err != nil {
		t.Fatal(err)
	}
	wantKernel(t, n, map[int]int64{2: 100, 5: 50000})

	// A key change (or any other change without a new limit) changes nothing.
	if err := s.Apply(ctx, "homef", 5); err != nil {
		t.Fatal(err)
	}
	wantKernel(t, n, map[int]int64{2: 100, 5: 50000})

	// Restart: a new instance finds everything in place.
	s = newShaper(t, n, db, nil)
	if changes, err := s.Reconcile(ctx); err != nil || changes != 0 {
		t.Fatalf("reconcile after a restart = %d changes, %v; want 0", changes, err)
	}

	// Reboot: the kernel lost everything; the next start puts it back.
	if err := n.nl.QdiscDel(netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: n.lo.Attrs().Index, Handle: Root(), Parent: netlink.HANDLE_ROOT})); err != nil {
		t.Fatal(err)
	}
	wantKernel(t, n, nil)
	s = newShaper(t, n, db, nil)
	if changes, err := s.Reconcile(ctx); err != nil || changes == 0 {
		t.Fatalf("reconcile after a reboot = %d changes, %v; want the limits back", changes, err)
	}
	wantKernel(t, n, map[int]int64{2: 100, 5: 50000})

	// Release: the home's class and filters go, the other home's stay.
	db.clear(2)
	if err := s.Apply(ctx, "homec", 2); err != nil {
		t.Fatal(err)
	}
	wantKernel(t, n, map[int]int64{5: 50000})

	// The last limit cleared: lo is back to the kernel's default.
	db.clear(5)
	if err := s.Apply(ctx, "homef", 5); err != nil {
		t.Fatal(err)
	}
	wantKernel(t, n, nil)
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check = %v", err)
	}
}

func TestReconcileRepairsDrift(t *testing.T) {
	requireRoot(t)
	limits := map[int]int64{2: 5000, 5: 50000}
	idx := func(n *testNetns) int { return n.lo.Attrs().Index }
	drifts := map[string]func(t *testing.T, n *testNetns) error{
		"class rate changed": func(t *testing.T, n *testNetns) error {
			c := class{handle: ClassID(2), rate: 125000, buffer: netlink.Xmittime(125000, Burst(1000))}
			return n.nl.ClassChange(c.toNetlink(idx(n)))
		},
		"class and its filters deleted": func(t *testing.T, n *testNetns) error {
			for _, f := range testPorts.leaves(2) {
				if err := n.nl.FilterDel(f.toNetlink(idx(n))); err != nil {
					return err
				}
			}
			return n.nl.ClassDel(class{handle: ClassID(2)}.toNetlink(idx(n)))
		},
		"one leaf deleted": func(t *testing.T, n *testNetns) error {
			return n.nl.FilterDel(testPorts.leaves(5)[1].toNetlink(idx(n)))
		},
		"a leaf sends the block to another class": func(t *testing.T, n *testNetns) error {
			f := testPorts.leaves(5)[0]
			if err := n.nl.FilterDel(f.toNetlink(idx(n))); err != nil {
				return err
			}
			f.classID = ClassID(2)
			return n.nl.FilterAdd(f.toNetlink(idx(n)))
		},
		"a stale leaf for an unlimited home": func(t *testing.T, n *testNetns) error {
			return n.nl.FilterAdd(testPorts.leaves(7)[0].toNetlink(idx(n)))
		},
		"a foreign hash table": func(t *testing.T, n *testNetns) error {
			return n.nl.FilterAdd(filter{handle: u32Handle(0x555, 0, 0), divisor: 4}.toNetlink(idx(n)))
		},
		"a stale class": func(t *testing.T, n *testNetns) error {
			c, _ := classFor(8, 1000, netlink.Xmittime)
			return n.nl.ClassAdd(c.toNetlink(idx(n)))
		},
		"a link of the hash tree deleted": func(t *testing.T, n *testNetns) error {
			return n.nl.FilterDel(filter{handle: u32Handle(tcpHTID, 0, 2)}.toNetlink(idx(n)))
		},
		"every filter deleted": func(t *testing.T, n *testNetns) error {
			return n.nl.FilterDel(&netlink.U32{FilterAttrs: netlink.FilterAttrs{LinkIndex: idx(n), Parent: Root(), Priority: filterPrio, Protocol: protocolIP}})
		},
		"a foreign filter sends everything to a limited class": func(t *testing.T, n *testNetns) error {
			return n.nl.FilterAdd(&netlink.U32{ClassId: ClassID(2), FilterAttrs: netlink.FilterAttrs{LinkIndex: idx(n), Parent: Root(), Priority: 1, Protocol: protocolIP}})
		},
		"the root qdisc replaced by one with a default class": func(t *testing.T, n *testNetns) error {
			q := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: idx(n), Handle: Root(), Parent: netlink.HANDLE_ROOT})
			if err := n.nl.QdiscDel(q); err != nil {
				return err
			}
			q.Defcls = 3
			return n.nl.QdiscAdd(q)
		},
	}
	for name, drift := range drifts {
		t.Run(name, func(t *testing.T) {
			n := newTestNetns(t)
			ctx := context.Background()
			db := &limitTable{}
			for slot, kbps := range limits {
				db.set(slot, kbps)
			}
			reg := prometheus.NewRegistry()
			s := newShaper(t, n, db, reg)
			if _, err := s.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			wantKernel(t, n, limits)
			before := repairsMetric(t, reg)
			if err := drift(t, n); err != nil {
				t.Fatalf("making drift: %v", err)
			}
			changes, err := s.Reconcile(ctx)
			if err != nil || changes == 0 {
				t.Fatalf("reconcile = %d changes, %v; want the drift repaired", changes, err)
			}
			wantKernel(t, n, limits)
			if got := repairsMetric(t, reg) - before; got != float64(changes) {
				t.Errorf("repairs metric grew by %v, want %d", got, changes)
			}
			if again, err := s.Reconcile(ctx); err != nil || again != 0 {
				t.Errorf("second reconcile = %d, %v; want nothing left to repair", again, err)
			}
		})
	}
}

func TestAnOperatorsRootQdiscIsLeftAlone(t *testing.T) {
	n := newTestNetns(t)
	ctx := context.Background()
	theirs := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: n.lo.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT})
	if err := n.nl.QdiscAdd(theirs); err != nil {
		t.Fatal(err)
	}
	db := &limitTable{}
	s := newShaper(t, n, db, nil)
	if _, err := s.Reconcile(ctx); err != nil {
		t.Fatalf("without limits, another root qdisc is no problem: %v", err)
	}
	db.set(1, 5000)
	if _, err := s.Reconcile(ctx); err == nil || !strings.Contains(err.Error(), "did not create") {
		t.Fatalf("reconcile = %v, want a refusal naming the foreign qdisc", err)
	}
	if err := s.Check(ctx); err == nil || !strings.HasPrefix(err.Error(), "unavailable: ") {
		t.Errorf("Check = %v", err)
	}
	if s.Available() == nil {
		t.Errorf("limits are accepted although they cannot be enforced")
	}
	if k := readKernel(t, n); k.root != "htb 1:0" {
		t.Errorf("root qdisc = %s, want the operator's htb 1: untouched", k.root)
	}
}

func TestAMissingInterfaceMakesShapingUnavailable(t *testing.T) {
	ctx := context.Background()
	db := &limitTable{}
	// No namespace needed: nothing is written when the interface is missing
	// (or when the process lacks CAP_NET_ADMIN, which is reported first).
	s, err := New(Options{Device: "hpnosuch0", Ports: testPorts, Source: db.source, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if s.Available() != nil || s.Check(ctx) != nil {
		t.Fatal("before the first reconcile, limits wait in the database")
	}
	if _, err := s.Reconcile(ctx); err == nil {
		t.Fatal("reconcile on a missing interface succeeded")
	}
	if err := s.Check(ctx); err == nil || !strings.HasPrefix(err.Error(), "unavailable: ") {
		t.Errorf("Check = %v", err)
	}
	if s.Available() == nil {
		t.Errorf("limits are accepted although nothing enforces them")
	}
	if err := s.Apply(ctx, "homea", 1); err != nil {
		t.Errorf("Apply while unavailable = %v; the loop retries, the change waits in the database", err)
	}
}

func TestShapingOff(t *testing.T) {
	ctx := context.Background()
	s, err := New(Options{Device: Off, Ports: testPorts, Source: (&limitTable{}).source, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Check(ctx) != nil {
		t.Errorf("shaping turned off is not a readiness problem")
	}
	if err := s.Available(); err == nil || !strings.Contains(err.Error(), "off") {
		t.Errorf("Available = %v, want limits refused because shaping is off", err)
	}
}

// repairsMetric reads homeport_shaper_repairs_total as /metrics shows it.
func repairsMetric(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "homeport_shaper_repairs_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no homeport_shaper_repairs_total metric")
	return 0
}

// TestWithoutNetAdminShapingSaysSoAndRefusesLimits runs the shaper in a
// process without CAP_NET_ADMIN: as root, this test re-runs itself as
// nobody in a network namespace of its own; otherwise it already is such a
// process.
func TestWithoutNetAdminShapingSaysSoAndRefusesLimits(t *testing.T) {
	if os.Geteuid() == 0 && os.Getenv("SHAPER_TEST_AS_NOBODY") == "" {
		// A directory nobody may enter (t.TempDir's parent is private).
		dir, err := os.MkdirTemp("", "shaper-nobody-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "shaper.test")
		b, err := os.ReadFile(exe)
		if err == nil {
			err = os.WriteFile(bin, b, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SHAPER_TEST_AS_NOBODY=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL,
			Credential: &syscall.Credential{Uid: 65534, Gid: 65534},
		}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("as nobody: %v\n%s", err, out)
		}
		return
	}
	ctx := context.Background()
	db := &limitTable{}
	db.set(1, 5000)
	s, err := New(Options{Device: "lo", Ports: testPorts, Source: db.source, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reconcile(ctx); err == nil || !strings.Contains(err.Error(), "CAP_NET_ADMIN") {
		t.Fatalf("reconcile without CAP_NET_ADMIN = %v, want an error naming it", err)
	}
	if err := s.Check(ctx); err == nil || !strings.HasPrefix(err.Error(), "unavailable: no CAP_NET_ADMIN") {
		t.Errorf("Check = %v", err)
	}
	if err := s.Available(); err == nil || !strings.Contains(err.Error(), "CAP_NET_ADMIN") {
		t.Errorf("Available = %v, want limits refused", err)
	}
	// The kernel agrees: a change through netlink is refused.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	err = h.QdiscAdd(netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: lo.Attrs().Index, Handle: Root(), Parent: netlink.HANDLE_ROOT}))
	if !errors.Is(err, unix.EPERM) {
		t.Errorf("adding a qdisc without CAP_NET_ADMIN = %v, want EPERM", err)
	}
}
