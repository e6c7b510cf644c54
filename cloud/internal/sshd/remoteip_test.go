package sshd

import (
	"net"
	"testing"
)

type addrConn struct {
	net.Conn
	addr net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.addr }

// TestRemoteIPGroupsIPv6By64: one subscriber's IPv6 /64 is one address for
// the per-address limit, or every attacker has billions of them.
func TestRemoteIPGroupsIPv6By64(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.7:5555", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:22", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff:ffff:ffff:ffff]:22", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:22", "2001:db8:1:3::/64"},
		{"[::ffff:192.0.2.7]:1", "192.0.2.7"},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := remoteIP(addrConn{addr: a}); got != tc.want {
			t.Errorf("remoteIP(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}
