// Package entries owns what a home exposes: validating a new entry (public
// side, local target, LAN policy) and syncing the entries with the cloud's
// mappings so both sides agree.
package entries

import (
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/store"
	"homeport.dev/proto"
)

// Normalize validates e and fills defaults; allowLAN is the profile's
// features.lan_forwarding. The rules are config.yaml's (config.NormalizeForward).
func Normalize(e store.Entry, allowLAN bool) (store.Entry, error) {
	f, err := config.NormalizeForward(e.Forward(), allowLAN)
	if err != nil {
		return e, err
	}
	n := store.FromForward(f)
	n.ID, n.Enabled, n.MappingID, n.TunnelPort, n.SyncError = e.ID, e.Enabled, e.MappingID, e.TunnelPort, e.SyncError
	return n, nil
}

// CheckTarget validates a local target host:port and applies the LAN
// policy: only this machine unless features.lan_forwarding is true.
func CheckTarget(target string, allowLAN bool) (string, error) {
	return config.CheckTarget(target, allowLAN)
}

// IsLocal reports whether host names this machine.
func IsLocal(host string) bool { return config.IsLocal(host) }

// Request is the cloud mapping an entry needs.
func Request(e store.Entry) proto.MappingRequest {
	return proto.MappingRequest{Scheme: e.Scheme, Host: e.Host, PublicPort: e.PublicPort, Private: e.Private}
}

// matches reports whether a cloud mapping serves entry e. The cloud knows
// no names of private mappings: the cached mapping ID finds one (Sync
// pairs the rest).
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
