package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// Production defaults (DESIGN.md, "Tunnels").
const (
	DefaultKeepalive       = 15 * time.Second
	DefaultKeepaliveMissed = 2
	DefaultMinBackoff      = 500 * time.Millisecond
	DefaultMaxBackoff      = 30 * time.Second
	// DefaultUnreachableBackoff caps the wait while the cloud does not
	// answer: equal jitter spreads the retries of a cloud's homes over
	// 1-2 s, and traffic is back within about 2 s of the cloud.
	DefaultUnreachableBackoff = 2 * time.Second
	DefaultStableAfter        = 30 * time.Second
	DefaultConnectTimeout     = 15 * time.Second
)

// Config is one profile's tunnel: which cloud, as which home, with which
// keys, and the timing of keepalives and reconnects. Zero durations take the
// production defaults; tests shorten them.
type Config struct {
	// Home is the home's slug, which is also the SSH user the cloud expects.
	Home string
	// Addr is the cloud's SSH endpoint, host:port.
	Addr string
	// Signer is the home's private key; its public half identifies the home.
	Signer ssh.Signer
	// HostKey is the cloud's host key as pinned at registration. A cloud
	// presenting any other key is refused: there is no trust on first use.
	HostKey ssh.PublicKey

	// Keepalive is the interval of keepalive@openssh.com requests.
	Keepalive time.Duration
	// KeepaliveMissed is how many intervals may pass without a reply before
	// the connection is declared dead and replaced.
	KeepaliveMissed int
	// MinBackoff and MaxBackoff bound the exponential, jittered delay
	// between reconnect attempts.
	MinBackoff, MaxBackoff time.Duration
	// UnreachableBackoff caps that delay while the cloud does not answer
	// (connection refused or cut before the login), so that a long outage
	// does not delay the return (retry.go).
	UnreachableBackoff time.Duration
	// StableAfter is how long a connection must have stayed up for its loss
	// to restart the backoff at MinBackoff; shorter-lived connections keep
	// doubling it, so a flapping link does not hammer the cloud.
	StableAfter time.Duration
	// ConnectTimeout bounds the TCP dial plus the SSH handshake.
	ConnectTimeout time.Duration
	// Relocate, if set, is asked after a refused login where the cloud
	// serves the home now (its API's answer, pinned by the caller): an
	// endpoint other than Addr is dialled at once (relocate.go).
	Relocate func(ctx context.Context) (Endpoint, error)

	// Log receives connection events with the keys home, port and err.
	Log *slog.Logger

	// batched puts proto/batchconn under the SSH transport, for the
	// benchmark's comparison (export_test.go): since the SSH library writes
	// each packet at once and pools its receive buffers (third_party), the
	// bare TCP connection costs less CPU than batching with an extra copy.
	batched bool
}

// withDefaults validates c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Home == "" {
		errs = append(errs, errors.New("tunnel: Home (the home's slug, used as SSH user) is required"))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("tunnel: Addr %q is not host:port: %w", c.Addr, err))
	}
	if c.Signer == nil {
		errs = append(errs, errors.New("tunnel: Signer (the home's private key) is required"))
	}
	if c.HostKey == nil {
		errs = append(errs, errors.New("tunnel: HostKey (the cloud's pinned host key) is required; there is no trust on first use"))
	}
	if c.Keepalive < 0 || c.KeepaliveMissed < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 || c.UnreachableBackoff < 0 || c.StableAfter < 0 || c.ConnectTimeout < 0 {
		errs = append(errs, errors.New("tunnel: durations and counts must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	c.Keepalive = orDefault(c.Keepalive, DefaultKeepalive)
	if c.KeepaliveMissed == 0 {
		c.KeepaliveMissed = DefaultKeepaliveMissed
	}
	c.MinBackoff = orDefault(c.MinBackoff, DefaultMinBackoff)
	c.MaxBackoff = orDefault(c.MaxBackoff, DefaultMaxBackoff)
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	c.UnreachableBackoff = max(orDefault(c.UnreachableBackoff, DefaultUnreachableBackoff), c.MinBackoff)
	c.StableAfter = orDefault(c.StableAfter, DefaultStableAfter)
	c.ConnectTimeout = orDefault(c.ConnectTimeout, DefaultConnectTimeout)
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// preferredCiphers puts AES-GCM first: with AES-NI it is about twice as fast
// as x/crypto's chacha20-poly1305, which has no amd64 assembly.
func preferredCiphers() []string {
	return []string{
		"aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
		"chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr",
	}
}

// ClientVersion is the home agent's SSH version string, which the cloud
// shows operators (web UI) beside each home. Its number grows when the
// agent learns something an older one refuses: 2 serves public HTTP that
// comes without a PROXY header (the cloud's --reuse-home-connections).
const ClientVersion = "SSH-2.0-homeport-home-2"

// clientConfig is the SSH client configuration of c.
func (c Config) clientConfig() *ssh.ClientConfig {
	return &ssh.ClientConfig{
		Config:            ssh.Config{Ciphers: preferredCiphers()},
		User:              c.Home,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(c.Signer)},
		HostKeyCallback:   pinnedHostKey(c.HostKey),
		HostKeyAlgorithms: hostKeyAlgorithms(c.HostKey),
		ClientVersion:     ClientVersion,
		Timeout:           c.ConnectTimeout,
	}
}
