package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"homeport.dev/proto/atomicfile"
)

// CacheFile is where a profile keeps what the cloud assigned to its
// forwards, relative to the profile directory. It is cache: a profile
// copied without it works, the next sync with the cloud rebuilds it.
const CacheFile = "cache/forwards.json"

// Assigned is what the cloud gave one forward at the last sync.
type Assigned struct {
	MappingID  uint64 `json:"mapping_id,omitempty"`
	TunnelPort int    `json:"tunnel_port,omitempty"`
	SyncError  string `json:"sync_error,omitempty"`
	// Disconnected: `home sync-tunnels --disconnect` removed its mapping;
	// the home's own syncs leave it unmapped until the user's sync-tunnels
	// (or Connect all) maps it again.
	Disconnected bool `json:"disconnected,omitempty"`
}

type cacheFile struct {
	Version  int                 `json:"version"`
	Forwards map[string]Assigned `json:"forwards"` // by Forward.Key
}

// CachePath is the profile's cache of cloud assignments.
func (p *Profile) CachePath() string { return filepath.Join(p.Dir, CacheFile) }

// ReadCache reads the cache at path; a missing or unreadable cache is
// empty (it is rebuilt from the cloud), never an error that stops the home.
func ReadCache(path string) map[string]Assigned {
	b, err := os.ReadFile(path)
	var c cacheFile
	if err != nil || json.Unmarshal(b, &c) != nil || c.Forwards == nil {
		return map[string]Assigned{}
	}
	return c.Forwards
}

// WriteCache replaces the cache at path atomically (0600, its directory
// 0700).
func WriteCache(path string, m map[string]Assigned) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	b, err := json.MarshalIndent(cacheFile{Version: 1, Forwards: m}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("the forwards cache: %w", err)
	}
	return nil
}

// LockPath is the file whose lock serialises writers of the profile's
// forwards and cache (syncs, CLI verbs, the console, the conversion of an
// old profile).
func (p *Profile) LockPath() string { return filepath.Join(p.Dir, "cache", ".lock") }

// Lock takes the profile's writer lock (see LockPath), waiting until ctx
// ends; where the platform has no file locks it only creates the file.
func (p *Profile) Lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(p.LockPath()), 0o700); err != nil {
		return nil, err
	}
	return lockFile(ctx, p.LockPath())
}
