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
	n.ID, n.Enabled, n.MappingID, n.TunnelPort, n.SyncError, n.Disconnected = e.ID, e.Enabled, e.MappingID, e.TunnelPort, e.SyncError, e.Disconnected
	return n, nil
}

// CheckTarget validates a local target host:port and applies the LAN
// policy: only this machine unless features.lan_forwarding is true.
func CheckTarget(target string, allowLAN bool) (string, error) {
	return config.CheckTarget(target, allowLAN)
}

// IsLocal reports whether host names this machine.
func IsLocal(host string) bool { return config.IsLocal(host) }

// Request is the cloud mapping an entry needs. A private entry's name is
// its mapping's name: `home connect NAME` finds it by that, and so does
// the next sync, whatever ID the cloud gives it.
func Request(e store.Entry) proto.MappingRequest {
	r := proto.MappingRequest{Scheme: e.Scheme, Host: e.Host, PublicPort: e.PublicPort, Private: e.Private}
	if e.Private {
		r.Name = e.Name
	}
	return r
}

// matches reports whether a cloud mapping serves entry e: a private one by
// its name (a cloud from before mapping names gives none; the cached
// mapping ID finds those), a public one by its host or public port.
func matches(e store.Entry, m proto.Mapping) bool {
	if m.Scheme != e.Scheme || m.Private != e.Private {
		return false
	}
	switch {
	case e.Private && m.Name != "":
		return m.Name == e.Name
	case e.Private:
		return m.ID == e.MappingID
	case e.Scheme == proto.SchemeTCP:
		return m.PublicPort == e.PublicPort
	}
	return m.Host == e.Host
}
