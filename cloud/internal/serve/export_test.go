package serve

import "net"

// WrapSSHListener makes Run serve SSH on wrap(listener) (tests of a
// listener that dies).
func (a *App) WrapSSHListener(wrap func(net.Listener) net.Listener) { a.wrapSSH = wrap }
