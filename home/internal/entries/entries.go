// Package entries owns what a home exposes: validating a new entry (public
// side, local target, LAN policy) and syncing the entries with the cloud's
// mappings so both sides agree.
package entries

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"homeport.dev/home/internal/store"
	"homeport.dev/proto"
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// Normalize validates e and fills defaults; allowLAN is the profile's
// features.lan_forwarding.
func Normalize(e store.Entry, allowLAN bool) (store.Entry, error) {
	if err := proto.ValidateScheme(e.Scheme); err != nil {
		return e, err
	}
	e.Host = proto.NormalizeHostname(e.Host)
	switch {
	case e.Scheme == proto.SchemeTCP && e.Private:
		if !nameRE.MatchString(e.Name) {
			return e, fmt.Errorf("a private entry needs a name of 1-32 characters a-z, 0-9 and -, like gpu-ui (got %s)", proto.Printable(e.Name))
		}
		e.PublicPort, e.Host = 0, ""
	case e.Scheme == proto.SchemeTCP:
		if err := proto.ValidatePort(e.PublicPort); err != nil {
			return e, fmt.Errorf("public port: %w", err)
		}
		e.Host, e.Name = "", ""
	default:
		if err := proto.ValidateHostname(e.Host); err != nil {
			return e, err
		}
		e.PublicPort, e.Name = 0, ""
	}
	switch {
	case e.Scheme != proto.SchemeHTTPS:
		e.Mode = ""
	case e.Mode == "":
		// The home's own certificate in front of a plain-HTTP service;
		// callers that can, probe the target first (Probe).
		e.Mode = store.ModeTerminate
	case e.Mode != store.ModePassthrough && e.Mode != store.ModeTerminate:
		return e, fmt.Errorf("mode %s is not passthrough (a local TLS service) or terminate (a local plain-HTTP service)", proto.Printable(e.Mode))
	}
	if e.DeployPath != "" {
		switch {
		case e.Scheme == proto.SchemeTCP:
			return e, fmt.Errorf("a deploy path is for the certificate of an http or https name; tcp entries have none")
		case !filepath.IsAbs(e.DeployPath) || strings.ContainsAny(e.DeployPath, "\x00\n"):
			return e, fmt.Errorf("deploy path %s must be an absolute directory", proto.Printable(e.DeployPath))
		}
		e.DeployPath = filepath.Clean(e.DeployPath)
	}
	target, err := CheckTarget(e.Target, allowLAN)
	if err != nil {
		return e, err
	}
	e.Target = target
	return e, nil
}

// CheckTarget validates a local target host:port and applies the LAN
// policy: only this machine unless features.lan_forwarding is true.
func CheckTarget(target string, allowLAN bool) (string, error) {
	target = strings.TrimSpace(target)
	if !strings.Contains(target, ":") {
		target = "localhost:" + target // "--to 3000" means this machine
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil || host == "" {
		return "", fmt.Errorf("target %s must be HOST:PORT, like localhost:3000", proto.Printable(target))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("target port %s must be 1-65535", proto.Printable(port))
	}
	if !IsLocal(host) {
		if ip := net.ParseIP(host); ip == nil {
			if err := proto.ValidateHostname(strings.ToLower(host)); err != nil && !singleLabel(host) {
				return "", fmt.Errorf("target host %s is not a valid name or IP address", proto.Printable(host))
			}
		}
		if !allowLAN {
			return "", fmt.Errorf("target %s is not on this machine; forwarding to other hosts on your network is off: set features.lan_forwarding: true in config.yaml to allow it", proto.Printable(target))
		}
	}
	return target, nil
}

// IsLocal reports whether host names this machine.
func IsLocal(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func singleLabel(h string) bool { return nameRE.MatchString(strings.ToLower(h)) }

// Request is the cloud mapping an entry needs.
func Request(e store.Entry) proto.MappingRequest {
	return proto.MappingRequest{Scheme: e.Scheme, Host: e.Host, PublicPort: e.PublicPort, Private: e.Private}
}

// matches reports whether a cloud mapping serves entry e.
func matches(e store.Entry, m proto.Mapping) bool {
	if m.Scheme != e.Scheme || m.Private != e.Private {
		return false
	}
	switch {
	case e.Scheme == proto.SchemeTCP && e.Private:
		return m.ID == e.MappingID
	case e.Scheme == proto.SchemeTCP:
		return m.PublicPort == e.PublicPort
	}
	return m.Host == e.Host
}
