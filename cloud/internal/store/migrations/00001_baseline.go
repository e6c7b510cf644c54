package migrations

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// baseline (version 1) is the schema of 2026-11-30, the day migrations began:
// the models of store/models.go as they were then, frozen below (names kept,
// so GORM names tables, columns, indexes and foreign keys as it did), made
// by AutoMigrate. On a database an older cloud made it is what adoption
// runs: the tables are there, AutoMigrate adds what older releases lacked.
// Do not edit these types: add a migration.
func baseline(_ context.Context, tx *gorm.DB) error {
	return tx.AutoMigrate(&User{}, &Token{}, &Session{}, &Home{}, &BaseDomain{}, &Mapping{}, &CertificateOrder{}, &GuardRow{},
		&Invitation{}, &PasswordReset{}, &DeletedUser{}, &AuditRecord{})
}

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

type Token struct {
	ID         uint64 `gorm:"primaryKey"`
	UserID     uint64 `gorm:"not null;index"`
	User       User   `gorm:"constraint:OnDelete:CASCADE"`
	Name       string `gorm:"size:64;not null"`
	Hash       string `gorm:"size:64;not null;uniqueIndex"`
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

type Session struct {
	ID        uint64    `gorm:"primaryKey"`
	UserID    uint64    `gorm:"not null;index"`
	User      User      `gorm:"constraint:OnDelete:CASCADE"`
	Hash      string    `gorm:"size:64;not null;uniqueIndex"`
	ExpiresAt time.Time `gorm:"not null;index"`
	CreatedAt time.Time
}

type Home struct {
	ID                 uint64 `gorm:"primaryKey"`
	Slot               int    `gorm:"not null;uniqueIndex"`
	Slug               string `gorm:"size:32;not null;uniqueIndex"`
	UserID             uint64 `gorm:"not null;index"`
	User               User   `gorm:"constraint:OnDelete:RESTRICT"`
	PublicKey          string `gorm:"not null"`
	KeyFingerprint     string `gorm:"size:64;not null;uniqueIndex"`
	BandwidthLimitKbps *int64
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

type BaseDomain struct {
	ID        uint64 `gorm:"primaryKey"`
	HomeID    uint64 `gorm:"not null;index"`
	Home      Home   `gorm:"constraint:OnDelete:CASCADE"`
	Domain    string `gorm:"size:253;not null;uniqueIndex"`
	CreatedAt time.Time
}

type Mapping struct {
	ID            uint64  `gorm:"primaryKey"`
	HomeID        uint64  `gorm:"not null;index"`
	Home          Home    `gorm:"constraint:OnDelete:CASCADE"`
	Scheme        string  `gorm:"size:8;not null;uniqueIndex:idx_mapping_scheme_host"`
	Host          *string `gorm:"size:253;uniqueIndex:idx_mapping_scheme_host"`
	PublicPort    *int    `gorm:"uniqueIndex"`
	TunnelPort    int     `gorm:"not null;uniqueIndex"`
	Private       bool    `gorm:"not null"`
	ProxyProtocol bool    `gorm:"not null;default:true"`
	CreatedAt     time.Time
}

type CertificateOrder struct {
	ID        uint64    `gorm:"primaryKey"`
	HomeID    uint64    `gorm:"not null;index"`
	Home      Home      `gorm:"constraint:OnDelete:CASCADE"`
	Host      string    `gorm:"size:253;not null"`
	Domain    string    `gorm:"size:253;not null;index"`
	CreatedAt time.Time `gorm:"not null;index"`
}

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

type PasswordReset struct {
	ID        uint64    `gorm:"primaryKey"`
	UserID    uint64    `gorm:"not null;index"`
	User      User      `gorm:"constraint:OnDelete:CASCADE"`
	Hash      string    `gorm:"size:64;not null;uniqueIndex"`
	ExpiresAt time.Time `gorm:"not null"`
	CreatedAt time.Time
}

type DeletedUser struct {
	ID        uint64    `gorm:"primaryKey;autoIncrement:false"`
	Username  string    `gorm:"size:32;not null"`
	DeletedBy string    `gorm:"size:32;not null"`
	DeletedAt time.Time `gorm:"not null;index"`
}

type AuditRecord struct {
	ID        uint64    `gorm:"primaryKey"`
	At        time.Time `gorm:"not null;index"`
	ActorKind string    `gorm:"size:16;not null"`
	Actor     string    `gorm:"size:64;not null;index"`
	Addr      string    `gorm:"size:64;not null"`
	Kind      string    `gorm:"size:48;not null;index"`
	Home      string    `gorm:"size:32;not null;index"`
	Target    string    `gorm:"size:300;not null"`
	OwnerID   uint64    `gorm:"not null;index"`
	Before    string    `gorm:"not null"`
	After     string    `gorm:"not null"`
}

type GuardRow struct {
	Name string `gorm:"primaryKey;size:128"`
	N    int64  `gorm:"not null"`
}

// TableName is the guards table's name.
func (GuardRow) TableName() string { return "guards" }
