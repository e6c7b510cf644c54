package gateway

import (
	"context"
	"fmt"
	"net/netip"
	"syscall"
)

// dialControl runs on every socket the gateway dials to a local service,
// after socket(2) and before Go's connect(2). It refuses addresses that are
// not on this machine when LAN forwarding is off (a name that passed
// validation may still resolve to another host), and connects to a
// loopback address ahead of Go (connectAhead).
func (g *Gateway) dialControl(_ context.Context, _, address string, c syscall.RawConn) error {
	// address is the resolved IP and port Go is about to connect to.
	ap, err := netip.ParseAddrPort(address)
	loopback := err == nil && ap.Addr().Unmap().IsLoopback()
	if !g.o.AllowLAN && !loopback {
		return fmt.Errorf("%s is not on this machine: %w", address, ErrLANForwarding)
	}
	if loopback {
		connectAhead(c, ap)
	}
	return nil
}
