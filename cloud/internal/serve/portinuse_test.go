package serve_test

import (
	"net"
	"strconv"
	"testing"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/proto"
)

// TestAHeldTunnelPortIsShownToItsHome: another program on the cloud's
// machine listens on a home's tunnel port; the home's forward of it is
// refused, and the home's mapping says why (port_in_use, not the
// no_forward of a home that did not ask). Once the port is free, the
// forward works and the mapping is up.
func TestAHeldTunnelPortIsShownToItsHome(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{})
	h := c.NewHome(t, "alice")
	tok := c.Token(t, h.User)
	path := "/api/v1/homes/" + h.Slug + "/mappings"
	var m proto.Mapping
	if st := api(t, c, tok, "POST", path, proto.MappingRequest{Scheme: "tcp", PublicPort: h.TCP.First}, &m); st != 201 {
		t.Fatalf("mapping: %d", st)
	}
	other, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(m.TunnelPort))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.Dial(h)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if ln, err := cl.Listen("tcp", "127.0.0.1:"+strconv.Itoa(m.TunnelPort)); err == nil {
		ln.Close()
		t.Fatal("the cloud accepted a forward of a port another program listens on")
	}
	state := func() string {
		var ms []proto.Mapping
		if st := api(t, c, tok, "GET", path, nil, &ms); st != 200 || len(ms) != 1 {
			t.Fatalf("mappings: %d %+v", st, ms)
		}
		return ms[0].State
	}
	if got := state(); got != "port_in_use" {
		t.Errorf("state with the port held = %q, want port_in_use", got)
	}
	other.Close()
	ln, err := cl.Listen("tcp", "127.0.0.1:"+strconv.Itoa(m.TunnelPort))
	if err != nil {
		t.Fatalf("forward once the port is free: %v", err)
	}
	defer ln.Close()
	if got := state(); got != "up" {
		t.Errorf("state once forwarded = %q, want up", got)
	}
}
