package store

import (
	"errors"
	"time"

	"gorm.io/gorm"
)

// User is an account. New self-signed-up users are inactive until an admin
// approves them.
type User struct {
	ID           uint64 `gorm:"primaryKey"`
	Username     string `gorm:"size:32;not null;uniqueIndex"`
	Email        string `gorm:"size:254;not null"`
	PasswordHash string `gorm:"not null"`
	Role         string `gorm:"size:16;not null"`
	Active       bool   `gorm:"not null"`
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Token is an API token; only its SHA-256 is stored.
type Token struct {
	ID         uint64 `gorm:"primaryKey"`
	UserID     uint64 `gorm:"not null;index"`
	User       User   `gorm:"constraint:OnDelete:CASCADE"`
	Name       string `gorm:"size:64;not null"`
	Hash       string `gorm:"size:64;not null;uniqueIndex"`
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// Session is a web UI login; only its SHA-256 is stored.
type Session struct {
	ID        uint64    `gorm:"primaryKey"`
	UserID    uint64    `gorm:"not null;index"`
	User      User      `gorm:"constraint:OnDelete:CASCADE"`
	Hash      string    `gorm:"size:64;not null;uniqueIndex"`
	ExpiresAt time.Time `gorm:"not null;index"`
	CreatedAt time.Time
}

// Home is a claimed slot. The slot fixes the home's tunnel and public TCP
// port blocks; the unique indexes stop two claims from taking one slot or one
// key.
type Home struct {
	ID                 uint64 `gorm:"primaryKey"`
	Slot               int    `gorm:"not null;uniqueIndex"`
	Slug               string `gorm:"size:32;not null;uniqueIndex"`
	UserID             uint64 `gorm:"not null;index"`
	User               User   `gorm:"constraint:OnDelete:RESTRICT"`
	PublicKey          string `gorm:"not null"`
	KeyFingerprint     string `gorm:"size:64;not null;uniqueIndex"`
	BandwidthLimitKbps *int64
	// Edge names the node that serves the home when several share the
	// database (Edge); "" on a single cloud.
	Edge      string `gorm:"size:32;not null;default:'';index"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// BaseDomain is a registrable domain owned by one home; no other home may own
// it, a parent or a child of it.
type BaseDomain struct {
	ID        uint64 `gorm:"primaryKey"`
	HomeID    uint64 `gorm:"not null;index"`
	Home      Home   `gorm:"constraint:OnDelete:CASCADE"`
	Domain    string `gorm:"size:253;not null;uniqueIndex"`
	CreatedAt time.Time
}

// Mapping routes a public name or port to one tunnel port of a home.
// Host is NULL for tcp mappings, PublicPort is NULL for http/https and private
// mappings; SQL unique indexes ignore NULLs, which is exactly what we want.
type Mapping struct {
	ID     uint64 `gorm:"primaryKey"`
	HomeID uint64 `gorm:"not null;index;uniqueIndex:idx_mapping_home_name,priority:1"`
	Home   Home   `gorm:"constraint:OnDelete:CASCADE"`
	// Name is unique within the home; every private mapping has one
	// (`home connect NAME`), a public one may. NULL when unnamed.
	Name       *string `gorm:"size:32;uniqueIndex:idx_mapping_home_name,priority:2"`
	Scheme     string  `gorm:"size:8;not null;uniqueIndex:idx_mapping_scheme_host"`
	Host       *string `gorm:"size:253;uniqueIndex:idx_mapping_scheme_host"`
	PublicPort *int    `gorm:"uniqueIndex"`
	TunnelPort int     `gorm:"not null;uniqueIndex"`
	Private    bool    `gorm:"not null"`
	// ProxyProtocol: HAProxy sends the tunnel a PROXY v2 header first (the
	// home agent reads it); off for a plain `ssh -R` target. The column's
	// default gives rows made before it existed the old behaviour (true).
	// GORM writes a column's default in place of a false bool on Create,
	// so Mappings.Create sets false with an update in the same transaction.
	ProxyProtocol bool `gorm:"not null;default:true"`
	CreatedAt     time.Time
}

// HostName returns the mapping's host or "".
func (m Mapping) HostName() string {
	if m.Host == nil {
		return ""
	}
	return *m.Host
}

// MappingName returns the mapping's name or "".
func (m Mapping) MappingName() string {
	if m.Name == nil {
		return ""
	}
	return *m.Name
}

// Port returns the mapping's public port or 0.
func (m Mapping) Port() int {
	if m.PublicPort == nil {
		return 0
	}
	return *m.PublicPort
}

// CertificateOrder is a certificate a home reported obtaining, kept for a
// week: the CA limits orders per registered domain (Domain) per week.
type CertificateOrder struct {
	ID        uint64    `gorm:"primaryKey"`
	HomeID    uint64    `gorm:"not null;index"`
	Home      Home      `gorm:"constraint:OnDelete:CASCADE"`
	Host      string    `gorm:"size:253;not null"`
	Domain    string    `gorm:"size:253;not null;index"`
	CreatedAt time.Time `gorm:"not null;index"`
}

// Invitation is a single-use link to create an account with Role; only the
// link's SHA-256 is stored. UsedBy is set (once) when it is accepted.
type Invitation struct {
	ID        uint64    `gorm:"primaryKey"`
	Hash      string    `gorm:"size:64;not null;uniqueIndex"`
	Role      string    `gorm:"size:16;not null"`
	CreatedBy string    `gorm:"size:32;not null"`
	ExpiresAt time.Time `gorm:"not null"`
	UsedBy    string    `gorm:"size:32"`
	UsedAt    *time.Time
	CreatedAt time.Time
}

// PasswordReset is a one-time link that sets a user's password; only its
// SHA-256 is stored, and it goes when used or when the user does.
type PasswordReset struct {
	ID        uint64    `gorm:"primaryKey"`
	UserID    uint64    `gorm:"not null;index"`
	User      User      `gorm:"constraint:OnDelete:CASCADE"`
	Hash      string    `gorm:"size:64;not null;uniqueIndex"`
	ExpiresAt time.Time `gorm:"not null"`
	CreatedAt time.Time
}

// DeletedUser remembers a deleted account (its old ID and name): a running
// cloud closes the SSH connections of that ID's homes when another process
// (the `cloud users delete` CLI) deleted it, and the name stays on record.
type DeletedUser struct {
	ID        uint64    `gorm:"primaryKey;autoIncrement:false"`
	Username  string    `gorm:"size:32;not null"`
	DeletedBy string    `gorm:"size:32;not null"`
	DeletedAt time.Time `gorm:"not null;index"`
}

// AuditRecord is one entry of the audit log: who (actor kind, name and
// client address) changed what (kind, home, target, before/after JSON),
// when. Rows are only ever inserted (package audit); the hooks below refuse
// updates and deletes, except the retention prune, which skips hooks. No
// foreign keys: a record outlives the user and home it names.
type AuditRecord struct {
	ID        uint64    `gorm:"primaryKey"`
	At        time.Time `gorm:"not null;index"`
	ActorKind string    `gorm:"size:16;not null"`
	Actor     string    `gorm:"size:64;not null;index"`
	Addr      string    `gorm:"size:64;not null"`
	Kind      string    `gorm:"size:48;not null;index"`
	Home      string    `gorm:"size:32;not null;index"`
	Target    string    `gorm:"size:300;not null"`
	// OwnerID is the account the record is about (0: none): a user reads
	// the records with their own ID.
	OwnerID uint64 `gorm:"not null;index"`
	Before  string `gorm:"not null"`
	After   string `gorm:"not null"`
}

// ErrAppendOnly refuses a change to an audit record.
var ErrAppendOnly = errors.New("audit records are append-only")

// BeforeUpdate keeps audit records append-only.
func (*AuditRecord) BeforeUpdate(*gorm.DB) error { return ErrAppendOnly }

// BeforeDelete keeps audit records append-only; the retention prune deletes
// with hooks skipped.
func (*AuditRecord) BeforeDelete(*gorm.DB) error { return ErrAppendOnly }

// GuardRow is the row Guard locks: one per invariant that spans rows, N
// counts the transactions that took it (the update is what takes the lock).
type GuardRow struct {
	Name string `gorm:"primaryKey;size:128"`
	N    int64  `gorm:"not null"`
}

// TableName keeps the table named after what it holds.
func (GuardRow) TableName() string { return "guards" }
