package edges

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"homeport.dev/cloud/internal/store"
)

// channel is the PostgreSQL NOTIFY channel of route and home changes.
const channel = "homeport_changes"

// maxPayload keeps a notice under PostgreSQL's 8000-byte NOTIFY limit; a
// larger change is sent as "compare everything".
const maxPayload = 7000

// Notice is one committed change other nodes must apply: mappings whose
// routes changed, a home that changed (moved, released, new key), or Full
// (compare every route).
type Notice struct {
	From     string         `json:"from"` // the sending process, which applied it already
	Mappings []RouteMapping `json:"m,omitempty"`
	Homes    []ChangedHome  `json:"h,omitempty"`
	Full     bool           `json:"f,omitempty"`
	Sent     time.Time      `json:"t"`
}

// ChangedHome names a home that changed (it may be gone).
type ChangedHome struct {
	ID   uint64 `json:"id"`
	Slug string `json:"slug"`
	Slot int    `json:"slot"`
}

// RouteMapping is what a route is derived from (reconcile.Touched).
type RouteMapping struct {
	Scheme        string  `json:"s"`
	Host          *string `json:"host,omitempty"`
	PublicPort    *int    `json:"pp,omitempty"`
	TunnelPort    int     `json:"tp"`
	Private       bool    `json:"p,omitempty"`
	ProxyProtocol bool    `json:"pr,omitempty"`
}

// Mappings converts store mappings for a notice.
func Mappings(ms ...store.Mapping) []RouteMapping {
	out := make([]RouteMapping, 0, len(ms))
	for _, m := range ms {
		out = append(out, RouteMapping{Scheme: m.Scheme, Host: m.Host, PublicPort: m.PublicPort, TunnelPort: m.TunnelPort, Private: m.Private, ProxyProtocol: m.ProxyProtocol})
	}
	return out
}

// Store converts a notice's mappings back.
func (n Notice) Store() []store.Mapping {
	out := make([]store.Mapping, 0, len(n.Mappings))
	for _, m := range n.Mappings {
		out = append(out, store.Mapping{Scheme: m.Scheme, Host: m.Host, PublicPort: m.PublicPort, TunnelPort: m.TunnelPort, Private: m.Private, ProxyProtocol: m.ProxyProtocol})
	}
	return out
}

// Bus sends and receives notices over PostgreSQL LISTEN/NOTIFY. On SQLite
// (one node) it does nothing.
type Bus struct {
	db  *store.DB
	dsn string
	id  string
	log *slog.Logger
}

// NewBus returns the bus of this process; dsn is the database URL (the
// listener holds a connection of its own).
func NewBus(db *store.DB, dsn string, log *slog.Logger) *Bus {
	b := make([]byte, 8)
	rand.Read(b)
	return &Bus{db: db, dsn: dsn, id: hex.EncodeToString(b), log: log}
}

// On reports whether notices travel (PostgreSQL).
func (b *Bus) On() bool { return store.IsPostgres(b.dsn) }

// Publish sends n to every node. Call it after the change committed: a
// node that receives it reads the database.
func (b *Bus) Publish(ctx context.Context, n Notice) {
	if !b.On() {
		return
	}
	n.From, n.Sent = b.id, time.Now()
	payload, err := json.Marshal(n)
	if err == nil && len(payload) > maxPayload {
		payload, err = json.Marshal(Notice{From: b.id, Full: true, Sent: n.Sent})
	}
	if err != nil {
		b.log.Warn("change notice not sent; other edges apply it at their next reconcile", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.db.WithContext(ctx).Exec("SELECT pg_notify(?, ?)", channel, string(payload)).Error; err != nil {
		b.log.Warn("change notice not sent; other edges apply it at their next reconcile", "err", err)
	}
}

// Listen calls handle with every notice another process publishes, until
// ctx ends. After each (re)connection it calls handle with Full: notices
// sent while it was away are lost, a full compare catches up.
func (b *Bus) Listen(ctx context.Context, handle func(Notice)) {
	if !b.On() {
		return
	}
	backoff := 100 * time.Millisecond
	for first := true; ctx.Err() == nil; first = false {
		err := b.listen(ctx, handle, first)
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("change notices interrupted; reconnecting (the periodic reconcile covers the gap)", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (b *Bus) listen(ctx context.Context, handle func(Notice), first bool) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, b.dsn)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	if !first {
		handle(Notice{Full: true, Sent: time.Now()})
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var notice Notice
		if err := json.Unmarshal([]byte(n.Payload), &notice); err != nil {
			b.log.Warn("change notice unreadable; comparing every route", "err", err)
			notice = Notice{Full: true}
		}
		if notice.From == b.id {
			continue // applied when it was sent
		}
		handle(notice)
	}
}
