package proto

import (
	"encoding/json"
	"time"
)

// Actor kinds of audit records: who made a change.
const (
	ActorUser   = "user"   // an account, with its API token or web session
	ActorHome   = "home"   // a home, with its own credential or SSH key
	ActorAdmin  = "admin"  // an account on an admin route or page
	ActorCLI    = "cli"    // a `cloud` command on the cloud's machine
	ActorSystem = "system" // the cloud itself (retention, timers)
)

// AuditRecord is one entry of the cloud's audit log. Before and After are
// JSON objects (absent when not useful); they never hold a secret.
type AuditRecord struct {
	ID        uint64          `json:"id"`
	At        time.Time       `json:"at"`
	ActorKind string          `json:"actor_kind"`
	Actor     string          `json:"actor"`
	Addr      string          `json:"addr"`
	Kind      string          `json:"kind"`
	Home      string          `json:"home,omitempty"`
	Target    string          `json:"target,omitempty"`
	Before    json.RawMessage `json:"before,omitempty"`
	After     json.RawMessage `json:"after,omitempty"`
}

// AuditPage is one page of audit records, newest first; Next, when set, is
// the cursor of the following (older) page.
type AuditPage struct {
	Records []AuditRecord `json:"records"`
	Next    string        `json:"next,omitempty"`
}
