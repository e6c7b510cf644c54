// Package store owns the home's entries as the agent uses them: each
// forward of config.yaml (the user's, read anew at every call so hand edits
// count) joined with what the cloud assigned to it (the profile's cache).
// Every write — CLI verbs, the console, syncs — goes through one writer lock
// per profile.
package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"homeport.dev/home/internal/config"
)

// Https modes of an entry.
const (
	ModePassthrough = config.ModePassthrough
	ModeTerminate   = config.ModeTerminate
)

// Entry is one forward of config.yaml and what the cloud assigned to it.
type Entry struct {
	// ID is the forward's position in config.yaml's forwards: list, from 1:
	// `home forwards rm 2` is forwards[1]. Edits change it; Key does not.
	ID            uint64 `json:"id"`
	Scheme        string `json:"scheme"`
	Host          string `json:"host,omitempty"`
	PublicPort    int    `json:"public_port,omitempty"`
	Private       bool   `json:"private"`
	Name          string `json:"name,omitempty"`
	Target        string `json:"target"`
	Mode          string `json:"mode,omitempty"`
	ProxyProtocol bool   `json:"proxy_protocol,omitempty"`
	Enabled       bool   `json:"enabled"`
	DeployPath    string `json:"deploy_path,omitempty"`
	// From the cache, set by a sync with the cloud.
	MappingID  uint64 `json:"mapping_id,omitempty"`
	TunnelPort int    `json:"tunnel_port,omitempty"`
	SyncError  string `json:"sync_error,omitempty"`
	// Disconnected: `home sync-tunnels --disconnect` removed its mapping
	// (config.Assigned.Disconnected).
	Disconnected bool `json:"disconnected,omitempty"`
}

// Forward is the entry as config.yaml lists it.
func (e Entry) Forward() config.Forward {
	f := config.Forward{Scheme: e.Scheme, Host: e.Host, PublicPort: e.PublicPort, Private: e.Private, Name: e.Name,
		Target: e.Target, Mode: e.Mode, ProxyProtocol: e.ProxyProtocol, DeployPath: e.DeployPath}
	if !e.Enabled {
		off := false
		f.Enabled = &off
	}
	return f
}

// FromForward is the entry of forward f (ID and assignment left zero).
func FromForward(f config.Forward) Entry {
	return Entry{Scheme: f.Scheme, Host: f.Host, PublicPort: f.PublicPort, Private: f.Private, Name: f.Name,
		Target: f.Target, Mode: f.Mode, ProxyProtocol: f.ProxyProtocol, Enabled: f.IsEnabled(), DeployPath: f.DeployPath}
}

// Public is how the entry is reached: https://host, tcp:N, or private:name.
// It is the entry's key: unique in a profile, and how the cache finds it.
func (e Entry) Public() string { return e.Forward().Key() }

// DB is a profile's entries: config.yaml's forwards: and the cache.
type DB struct {
	p  *config.Profile
	mu sync.Mutex // see LockSync
}

// Open returns the entries of profile p.
func Open(p *config.Profile) *DB { return &DB{p: p} }

// Close is a no-op, left for callers that defer it.
func (db *DB) Close() error { return nil }

// Entries returns every entry in config.yaml's order. An invalid forwards:
// list (a hand edit) is an error that names each bad field; callers keep
// what they had.
func (db *DB) Entries(ctx context.Context) ([]Entry, error) {
	fs, err := config.ReadForwards(db.p.ConfigPath())
	if err != nil {
		return nil, err
	}
	cache := config.ReadCache(db.p.CachePath())
	es := make([]Entry, len(fs))
	for i, f := range fs {
		es[i] = FromForward(f)
		es[i].ID = uint64(i + 1)
		a := cache[f.Key()]
		es[i].MappingID, es[i].TunnelPort, es[i].SyncError, es[i].Disconnected = a.MappingID, a.TunnelPort, a.SyncError, a.Disconnected
	}
	return es, nil
}

// Entry returns one entry by ID.
func (db *DB) Entry(ctx context.Context, id uint64) (Entry, error) {
	es, err := db.Entries(ctx)
	if err != nil {
		return Entry{}, err
	}
	if id < 1 || id > uint64(len(es)) {
		return Entry{}, fmt.Errorf("no entry %d; `home forwards list` shows them", id)
	}
	return es[id-1], nil
}

// ErrDuplicate means an entry with the same public side exists.
var ErrDuplicate = errors.New("already exposed")

// Add appends e to config.yaml's forwards (comments and order of the file
// kept) and records its mapping in the cache; e.ID is set.
func (db *DB) Add(ctx context.Context, e *Entry) error {
	unlock, err := db.LockSync(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	es, err := db.Entries(ctx)
	if err != nil {
		return err
	}
	for _, o := range es {
		if o.Public() == e.Public() {
			return fmt.Errorf("%s is already exposed; remove it first (`home forwards rm %d`): %w", e.Public(), o.ID, ErrDuplicate)
		}
	}
	if err := db.setAssigned(e.Public(), config.Assigned{MappingID: e.MappingID, TunnelPort: e.TunnelPort, SyncError: e.SyncError}); err != nil {
		return err
	}
	err = config.EditForwards(db.p.ConfigPath(), func(fe *config.ForwardsEdit) error {
		e.ID = uint64(fe.Len() + 1)
		return fe.Append(e.Forward())
	})
	return err
}

// SetEnabled opens or closes the entry with key (Entry.Public) in
// config.yaml.
func (db *DB) SetEnabled(ctx context.Context, key string, on bool) error {
	return db.edit(ctx, key, func(fe *config.ForwardsEdit, i int) { fe.SetEnabled(i, on) })
}

// Remove deletes the entry with key from config.yaml and the cache.
func (db *DB) Remove(ctx context.Context, key string) error {
	err := db.edit(ctx, key, func(fe *config.ForwardsEdit, i int) { fe.Remove(i) })
	if err != nil {
		return err
	}
	cache := config.ReadCache(db.p.CachePath())
	if _, ok := cache[key]; ok {
		delete(cache, key)
		return config.WriteCache(db.p.CachePath(), cache)
	}
	return nil
}

func (db *DB) edit(ctx context.Context, key string, fn func(*config.ForwardsEdit, int)) error {
	unlock, err := db.LockSync(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	// Refuse to write on top of an invalid hand edit: the user fixes it.
	if _, err := db.Entries(ctx); err != nil {
		return err
	}
	return config.EditForwards(db.p.ConfigPath(), func(fe *config.ForwardsEdit) error {
		i := fe.Index(key)
		if i < 0 {
			return fmt.Errorf("%s is not in config.yaml's forwards (edited meanwhile?); `home forwards list` shows them", key)
		}
		fn(fe, i)
		return nil
	})
}

// SetSynced records in the cache what a sync with the cloud learned of the
// entry with key. The caller holds LockSync.
func (db *DB) SetSynced(ctx context.Context, key string, a config.Assigned) error {
	return db.setAssigned(key, a)
}

func (db *DB) setAssigned(key string, a config.Assigned) error {
	cache := config.ReadCache(db.p.CachePath())
	if cache[key] == a {
		return nil
	}
	if a == (config.Assigned{}) {
		delete(cache, key)
	} else {
		cache[key] = a
	}
	return config.WriteCache(db.p.CachePath(), cache)
}

// LockSync takes the profile's single-writer lock: between the goroutines
// of this process and, where the platform has file locks, between
// processes (a CLI verb beside a running console). Syncs hold it for their
// whole run, so an edit waits for the sync and the other way round. The
// returned function unlocks.
func (db *DB) LockSync(ctx context.Context) (unlock func(), err error) {
	db.mu.Lock()
	release, err := db.p.Lock(ctx)
	if err != nil {
		db.mu.Unlock()
		return nil, err
	}
	return func() {
		release()
		db.mu.Unlock()
	}, nil
}
