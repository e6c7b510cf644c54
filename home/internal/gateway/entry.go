package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Kind is what an entry serves, after the cloud's scheme.
type Kind string

const (
	// TCP pipes bytes to the local service.
	TCP Kind = "tcp"
	// HTTP reverse-proxies HTTP requests to the local service.
	HTTP Kind = "http"
	// HTTPS passes the TLS bytes through to a local TLS service, or, with
	// Entry.TLS, terminates TLS with the home's own certificate and
	// reverse-proxies the requests to a local plain-HTTP service.
	HTTPS Kind = "https"
)

// Entry says what one forwarded tunnel port leads to.
type Entry struct {
	Kind Kind
	// Target is the local service, host:port. Only loopback targets
	// (127.0.0.0/8, ::1, localhost) are allowed unless the gateway's
	// AllowLAN (features.lan_forwarding) is set.
	Target string
	// SendProxy, for TCP and HTTPS passthrough, sends a PROXY v2 header
	// carrying the internet client's address to Target before the bytes, for
	// services that understand it (nginx "proxy_protocol", HAProxy
	// "accept-proxy", ...). HTTP services get X-Forwarded-For instead.
	SendProxy bool
	// TLS, for HTTPS, terminates TLS with this configuration (the home's own
	// certificate; GetCertificate may issue it on demand) and proxies plain
	// HTTP to Target. Nil passes TLS through untouched.
	TLS *tls.Config
	// Private marks an entry reached through direct-tcpip from another home
	// of the same account rather than through the cloud's HAProxy: its
	// connections carry no PROXY header.
	Private bool
	// Count, if set, counts the bytes of the entry's connections (the
	// console's traffic figures); it may be shared by the handlers of
	// successive versions of the entry.
	Count *Counter
}

// ErrLANForwarding is wrapped by the error of an entry whose target is not
// on this machine while LAN forwarding is off.
var ErrLANForwarding = errors.New("forwarding to other hosts on the LAN is off: set features.lan_forwarding: true in the profile to allow it")

// Validate checks e as the gateway would use it: a known kind, options that
// fit the kind, and a target that is host:port with a port in 1..65535 and,
// unless allowLAN, a loopback host.
func (e Entry) Validate(allowLAN bool) error {
	switch e.Kind {
	case TCP, HTTP, HTTPS:
	default:
		return fmt.Errorf("entry kind %q is not tcp, http or https", e.Kind)
	}
	if e.TLS != nil && e.Kind != HTTPS {
		return fmt.Errorf("a %s entry cannot terminate TLS; only https entries can", e.Kind)
	}
	if e.SendProxy && (e.Kind == HTTP || e.TLS != nil) {
		return errors.New("a PROXY header can be sent only to tcp and https passthrough targets; HTTP targets get X-Forwarded-For")
	}
	host, err := checkTarget(e.Target)
	if err != nil {
		return err
	}
	if !allowLAN && !isLoopback(host) {
		return fmt.Errorf("target %s is not on this machine: %w", e.Target, ErrLANForwarding)
	}
	return nil
}

// checkTarget parses host:port and returns the host.
func checkTarget(target string) (string, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return "", fmt.Errorf("target %q is not host:port: %w", target, err)
	}
	if host == "" {
		return "", fmt.Errorf("target %q has no host; use localhost:%s or 127.0.0.1:%s", target, port, port)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("target %q: port %q is not a number in 1..65535", target, port)
	}
	return host, nil
}

// isLoopback reports whether host names this machine: "localhost" or a
// loopback IP literal. Any other name counts as a LAN host.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
