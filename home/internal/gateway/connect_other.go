//go:build !linux

package gateway

import (
	"net/netip"
	"syscall"
)

// connectAhead does nothing here: the second connect(2) it relies on
// answering at once is Linux's behavior (connect_linux.go).
func connectAhead(syscall.RawConn, netip.AddrPort) {}
