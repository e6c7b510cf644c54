//go:build linux

package gateway

import (
	"net/netip"
	"syscall"
)

// connectAhead starts the connection to a loopback address itself, so that
// Go's own connect(2) right after finds it made and returns at once.
//
// A non-blocking connect(2) returns EINPROGRESS even on loopback, where
// the whole handshake has run by the time the call returns; Go then parks
// the dialing goroutine until its poller reports the socket writable. The
// agent runs Go code on one processor, and the poller is asked only once
// no other goroutine is runnable: a visitor's dial waited behind the
// spare channel the cloud opened meanwhile and behind the previous
// visitor's teardown. Linux answers a second connect(2) on an established
// socket with 0, on a refused one with the refusal, and on one still
// connecting with EALREADY, which Go waits on as before: nothing changes
// but the wait. tcpdump of new connections one after another (median):
// the service's SYN to the visitor's first bytes 107 -> 67 us.
func connectAhead(c syscall.RawConn, ap netip.AddrPort) {
	var sa syscall.Sockaddr
	if a := ap.Addr(); a.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	} else {
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	}
	c.Control(func(fd uintptr) { syscall.Connect(int(fd), sa) })
}
