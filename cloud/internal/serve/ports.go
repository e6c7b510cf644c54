package serve

import (
	"syscall"

	"homeport.dev/cloud/internal/check"
)

// warnPorts logs what `cloud check` says of the tunnel and public TCP port
// ranges (overlap with the kernel's ephemeral ports, ports another process
// listens on) before the cloud binds any of them.
func (a *App) warnPorts() {
	cfg := a.Config
	h, err := check.ReadHost(cfg.Layout.TunnelRange(), cfg.TCPPorts)
	if err != nil {
		return // no /proc (not Linux): nothing to tell
	}
	for _, f := range check.Ports(cfg, h) {
		a.log.Warn(f.What, "fix", f.Fix)
	}
}

// portHeld reports whether something listens on 127.0.0.1:port (or on every
// address at port): a home's forward of that tunnel port is refused. It
// binds without listening, so it never takes a connection; SO_REUSEADDR
// lets it ignore connections of a closed forward still in TIME_WAIT, as the
// forward itself does.
func portHeld(port int) bool {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return false
	}
	return syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}) == syscall.EADDRINUSE
}
