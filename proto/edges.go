package proto

import "time"

// Edge is one node of a cloud whose nodes share one database (`cloud serve
// --edge NAME`), as GET /api/v1/admin/edges lists it.
type Edge struct {
	Name string `json:"name"`
	// SSH is the endpoint the edge's homes dial (user empty).
	SSH       SSHEndpoint `json:"ssh"`
	HTTPAddr  string      `json:"http_addr"`
	HTTPSAddr string      `json:"https_addr"`
	// Up: it heartbeated within the last 10 s.
	Up          bool      `json:"up"`
	Load        int       `json:"load"`  // connected homes at its last heartbeat
	Homes       int       `json:"homes"` // homes assigned to it
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
}

// MoveHomeRequest assigns a home to another edge.
type MoveHomeRequest struct {
	Edge string `json:"edge"`
}
