package api_test

import (
	"time"

	"homeport.dev/cloud/internal/store"
)

// liveEdge registers an edge that heartbeated just now, as a node started
// with --edge NAME would.
func (e *env) liveEdge(name string) {
	e.t.Helper()
	now := time.Now().UTC()
	err := e.app.DB.Create(&store.Edge{Name: name, SSHHost: name + ".example.net", SSHPort: 22, HostKey: "ssh-ed25519 AAAA", StartedAt: now, HeartbeatAt: now}).Error
	if err != nil {
		e.t.Fatal(err)
	}
}
