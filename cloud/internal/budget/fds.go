package budget

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit lifts the process's soft RLIMIT_NOFILE to its hard limit
// (the default soft limit, 1024, is far below what an edge needs) and
// returns the limit now in force.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		want := l
		want.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return l.Cur, fmt.Errorf("raise the open-files limit from %d to %d: %w", l.Cur, l.Max, err)
		}
		l = want
	}
	return l.Cur, nil
}

// Reserve is what the edge keeps for itself out of its file limit: the
// connections of its two web listeners (the plain API and the HTTPS one,
// at most APIConns each), the database, the HAProxy runtime socket, the SSH
// endpoint's handshakes, logs.
const (
	APIConns    = 1024
	baseReserve = 256
)

// EdgeShare is how many tunnel channels all homes together may hold,
// given the process's file limit and what every home holds besides
// channels (its connection, listeners and pending dials), so that homes
// at their limits can never take the descriptors the API and new logins
// need. It is never below one channel per home.
func EdgeShare(fileLimit uint64, homes, listenersPerHome, pendingPerHome, connsPerIP int) int {
	reserve := uint64(baseReserve + 2*APIConns + connsPerIP*4 + homes*(listenersPerHome+pendingPerHome+2))
	if fileLimit <= reserve+uint64(homes) {
		return homes
	}
	n := fileLimit - reserve
	if n > 1<<30 {
		n = 1 << 30
	}
	return int(n)
}
