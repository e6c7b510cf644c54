package migrations

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// Edge is the edges table as version 3 made it.
type Edge struct {
	Name        string    `gorm:"primaryKey;size:32"`
	SSHHost     string    `gorm:"size:253;not null"`
	SSHPort     int       `gorm:"not null"`
	HostKey     string    `gorm:"not null"`
	HTTPAddr    string    `gorm:"size:64;not null"`
	HTTPSAddr   string    `gorm:"size:64;not null"`
	Load        int       `gorm:"not null"`
	StartedAt   time.Time `gorm:"not null"`
	HeartbeatAt time.Time `gorm:"not null;index"`
}

// homeEdge is Home's edge column as version 3 added it.
type homeEdge struct {
	Edge string `gorm:"size:32;not null;default:'';index"`
}

func (homeEdge) TableName() string { return "homes" }

// edges (version 3): several nodes share one database, each serving the
// homes whose edge names it; "" (every home before) is the single cloud's.
func edges(_ context.Context, tx *gorm.DB) error {
	if err := tx.AutoMigrate(&Edge{}); err != nil {
		return err
	}
	if err := AddColumns(tx, &homeEdge{}, "Edge"); err != nil {
		return err
	}
	return AddIndexes(tx, &homeEdge{}, "idx_homes_edge")
}
