package gateway

import (
	"context"
	"fmt"
	"net"
	"syscall"
)

// dialControl runs on every socket the gateway dials to a local service,
// after socket(2) and before Go's connect(2). It refuses addresses that are
// not on this machine when LAN forwarding is off (a name that passed
// validation may still resolve to another host), and connects to a
// loopback address ahead of Go (connectAhead).
func (g *Gateway) dialControl(_ context.Context, _, address string, c syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	loopback := err == nil && isLoopback(host)
	if !g.o.AllowLAN && !loopback {
		return fmt.Errorf("%s is not on this machine: %w", address, ErrLANForwarding)
	}
	if loopback {
		connectAhead(c, address)
	}
	return nil
}
