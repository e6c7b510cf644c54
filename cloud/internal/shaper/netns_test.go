package shaper

import (
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"homeport.dev/proto/testnet"
)

// testNetns is a fresh network namespace for one test, with its loopback up
// and a netlink handle on it. Nothing here touches the host's interfaces.
type testNetns struct {
	ns netns.NsHandle
	nl *netlink.Handle
	lo netlink.Link
}

// newTestNetns creates the namespace, or skips the test when not root.
func newTestNetns(t testing.TB) *testNetns {
	t.Helper()
	requireRoot(t)
	type made struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan made, 1)
	go func() {
		// Never unlocked: the thread that entered the namespace ends with
		// this goroutine, so no other code ever runs in it by accident.
		runtime.LockOSThread()
		ns, err := netns.New()
		ch <- made{ns, err}
	}()
	m := <-ch
	if m.err != nil {
		t.Fatalf("new network namespace: %v", m.err)
	}
	h, err := netlink.NewHandleAt(m.ns)
	if err != nil {
		m.ns.Close()
		t.Fatal(err)
	}
	n := &testNetns{ns: m.ns, nl: h}
	t.Cleanup(func() { h.Close(); m.ns.Close() })
	if n.lo, err = h.LinkByName("lo"); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(n.lo); err != nil {
		t.Fatal(err)
	}
	return n
}

// requireRoot skips a test that needs to create network namespaces.
func requireRoot(t testing.TB) {
	t.Helper()
	testnet.RequireRoot(t, "the test shapes the loopback of a network namespace of its own")
}

// run calls f on a thread inside the namespace, so the sockets f opens
// belong to it (and keep belonging to it on any thread afterwards).
func (n *testNetns) run(t testing.TB, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, as in newTestNetns
		if err := netns.Set(n.ns); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
