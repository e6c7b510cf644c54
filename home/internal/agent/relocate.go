package agent

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"golang.org/x/crypto/ssh"

	"homeport.dev/home/internal/tunnel"
)

// relocate asks the cloud's API where this home's tunnel goes now (a cloud
// of several edges moves homes between them) and pins a changed endpoint
// and host key in config.yaml, so the next start dials it too. The tunnel
// calls it after a refused login (tunnel.Config.Relocate).
func (a *Agent) relocate(ctx context.Context) (tunnel.Endpoint, error) {
	h, err := a.Cloud.Home(ctx, a.Profile.Cloud.Home)
	if err != nil {
		return tunnel.Endpoint{}, err
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.SSH.HostKey))
	if err != nil {
		return tunnel.Endpoint{}, fmt.Errorf("the cloud's answer has no usable host key: %w", err)
	}
	ep := tunnel.Endpoint{Addr: net.JoinHostPort(h.SSH.Host, strconv.Itoa(h.SSH.Port)), HostKey: key}
	a.mu.Lock()
	defer a.mu.Unlock()
	pinned := &a.Profile.Cloud.SSH
	if pinned.Host == h.SSH.Host && pinned.Port == h.SSH.Port && pinned.HostKey == h.SSH.HostKey {
		return ep, nil
	}
	old := *pinned
	pinned.Host, pinned.Port, pinned.HostKey = h.SSH.Host, h.SSH.Port, h.SSH.HostKey
	if err := a.Profile.Save(); err != nil {
		*pinned = old
		return tunnel.Endpoint{}, fmt.Errorf("pin the cloud's new SSH endpoint in %s: %w", a.Profile.ConfigPath(), err)
	}
	a.log.Info("the cloud moved this home to another edge; its SSH endpoint and host key are pinned in config.yaml",
		"edge", h.Edge, "addr", ep.Addr, "host_key", ssh.FingerprintSHA256(key))
	return ep, nil
}
