package cloudtest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
)

// ShapeDev returns an interface for a test cloud's bandwidth shaper that no
// traffic crosses: one end of a veth pair made for this test and deleted
// after it (this kernel has no dummy links), so
// tests that set limits never shape the machine's own loopback. Without
// root it returns "off", and such a cloud refuses limits, as a real one
// without CAP_NET_ADMIN would; as root, failing to make the pair fails the
// test (a root run must exercise shaping, not quietly turn it off).
func ShapeDev(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("not root: bandwidth limits are off in this test cloud")
		return "off"
	}
	b := make([]byte, 5)
	rand.Read(b)
	name := "hpt" + hex.EncodeToString(b) // 13 characters (+1 for the peer): under IFNAMSIZ
	link := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := netlink.LinkAdd(link); err != nil {
		t.Fatalf("running as root but cannot create a veth pair for the test cloud's shaper: %v", err)
	}
	t.Cleanup(func() { netlink.LinkDel(link) })
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatalf("bring up %s: %v", name, err)
	}
	return name
}
