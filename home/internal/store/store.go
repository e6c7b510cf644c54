// Package store owns the home's database (SQLite in the profile): the local
// entries — what to expose and where it goes at home — and what the cloud
// assigned to each.
package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Entry kinds of https handling at home.
const (
	ModePassthrough = "passthrough" // TLS goes through to a local TLS service
	ModeTerminate   = "terminate"   // the home terminates TLS with its own certificate
)

// Entry is one thing the home exposes: a public name or port (or a private
// mapping) and the local service behind it.
type Entry struct {
	ID         uint64 `gorm:"primaryKey" json:"id"`
	Scheme     string `gorm:"size:8;not null;uniqueIndex:idx_entry_key" json:"scheme"`
	Host       string `gorm:"size:253;not null;default:'';uniqueIndex:idx_entry_key" json:"host,omitempty"`
	PublicPort int    `gorm:"not null;default:0;uniqueIndex:idx_entry_key" json:"public_port,omitempty"`
	Private    bool   `gorm:"not null;default:false" json:"private"`
	// Name tells private entries apart (they have neither host nor public port).
	Name          string `gorm:"size:64;not null;default:'';uniqueIndex:idx_entry_key" json:"name,omitempty"`
	Target        string `gorm:"size:300;not null" json:"target"`
	Mode          string `gorm:"size:16;not null;default:''" json:"mode,omitempty"`
	ProxyProtocol bool   `gorm:"not null;default:false" json:"proxy_protocol,omitempty"`
	Enabled       bool   `gorm:"not null;default:true" json:"enabled"`
	// DeployPath, for http and https entries, receives fullchain.pem and
	// privkey.pem after every issuance of the name's certificate (for a
	// local TLS service behind a passthrough entry, say).
	DeployPath string `gorm:"size:1024;not null;default:''" json:"deploy_path,omitempty"`
	// Set by a sync with the cloud.
	MappingID  uint64    `gorm:"not null;default:0" json:"mapping_id,omitempty"`
	TunnelPort int       `gorm:"not null;default:0" json:"tunnel_port,omitempty"`
	SyncError  string    `gorm:"not null;default:''" json:"sync_error,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Public is how the entry is reached: https://host, tcp port N, or private name.
func (e Entry) Public() string {
	switch {
	case e.Private && e.Host == "":
		return "private:" + e.Name
	case e.Scheme == "tcp":
		return fmt.Sprintf("tcp:%d", e.PublicPort)
	}
	return e.Scheme + "://" + e.Host
}

// DB is the home's database.
type DB struct {
	*gorm.DB
	path   string
	syncMu sync.Mutex // see LockSync
}

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	dsn := "file:" + path + "?_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=on&_txlock=immediate"
	g, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{TranslateError: true, Logger: logger.Discard})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db := &DB{DB: g.WithContext(ctx), path: path}
	if err := db.AutoMigrate(&Entry{}); err != nil {
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return db, os.Chmod(path, 0o600)
}

// Close releases the database.
func (db *DB) Close() error {
	s, err := db.DB.DB()
	if err != nil {
		return err
	}
	return s.Close()
}

// ErrDuplicate means an entry with the same public side exists.
var ErrDuplicate = gorm.ErrDuplicatedKey

// Entries returns every entry in creation order.
func (db *DB) Entries(ctx context.Context) ([]Entry, error) {
	var es []Entry
	return es, db.WithContext(ctx).Order("id").Find(&es).Error
}

// Entry returns one entry.
func (db *DB) Entry(ctx context.Context, id uint64) (Entry, error) {
	var e Entry
	err := db.WithContext(ctx).Take(&e, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return e, fmt.Errorf("no entry %d; `home forwards list` shows them", id)
	}
	return e, err
}

// Add stores a new entry.
func (db *DB) Add(ctx context.Context, e *Entry) error {
	err := db.WithContext(ctx).Create(e).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return fmt.Errorf("%s is already exposed; remove it first (`home forwards rm`)", e.Public())
	}
	return err
}

// Save updates an entry.
func (db *DB) Save(ctx context.Context, e *Entry) error {
	return db.WithContext(ctx).Save(e).Error
}

// SetSynced records what a sync with the cloud learned of an entry: only
// those columns, so a sync that read the entry earlier never undoes a
// change made meanwhile (an entry closed while the sync ran stays closed).
func (db *DB) SetSynced(ctx context.Context, id, mappingID uint64, tunnelPort int, syncError string) error {
	return db.WithContext(ctx).Model(&Entry{ID: id}).
		Select("MappingID", "TunnelPort", "SyncError").
		Updates(Entry{MappingID: mappingID, TunnelPort: tunnelPort, SyncError: syncError}).Error
}

// LockSync serialises syncs of this profile with the cloud: between the
// goroutines of this process and, where the platform has file locks,
// between processes (a CLI sync beside a running console). The returned
// function unlocks.
func (db *DB) LockSync(ctx context.Context) (unlock func(), err error) {
	db.syncMu.Lock()
	release, err := lockFile(ctx, db.path+".sync-lock")
	if err != nil {
		db.syncMu.Unlock()
		return nil, err
	}
	return func() {
		release()
		db.syncMu.Unlock()
	}, nil
}

// Remove deletes an entry.
func (db *DB) Remove(ctx context.Context, id uint64) error {
	return db.WithContext(ctx).Delete(&Entry{}, id).Error
}
