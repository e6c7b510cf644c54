package store

import "time"

// Edge is one node of a cloud whose nodes share one PostgreSQL database
// (`cloud serve --edge NAME`): its own HAProxy, SSH endpoint and shaper
// serve the homes whose Edge names it. Each node rewrites its row every
// heartbeat; a row older than a few heartbeats is an edge that is down.
type Edge struct {
	Name    string `gorm:"primaryKey;size:32"`
	SSHHost string `gorm:"size:253;not null"` // the SSH endpoint homes dial (--public-host)
	SSHPort int    `gorm:"not null"`
	HostKey string `gorm:"not null"` // authorized_keys form
	// HTTPAddr and HTTPSAddr are the public listeners (HAProxy), for the
	// admin's view of where visitors arrive.
	HTTPAddr    string    `gorm:"size:64;not null"`
	HTTPSAddr   string    `gorm:"size:64;not null"`
	Load        int       `gorm:"not null"` // connected homes at the last heartbeat
	StartedAt   time.Time `gorm:"not null"`
	HeartbeatAt time.Time `gorm:"not null;index"`
}
