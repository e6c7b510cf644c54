package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"homeport.dev/cloud/internal/store"
)

// Events records what changes no row, as the SSH endpoint's logins,
// logouts, takeovers and refusals, at most once per key and interval: a
// home that reconnects in a loop, or a scanner that tries keys, cannot fill
// the log. The record after a quiet spell counts what was left out.
type Events struct {
	db       *store.DB
	log      *slog.Logger
	interval time.Duration

	mu   sync.Mutex
	last map[string]*burst
}

type burst struct {
	at      time.Time
	dropped int
}

// maxKeys bounds the keys Events remembers; beyond it, old ones are forgotten.
const maxKeys = 10000

// NewEvents returns a recorder that writes at most one record per key every
// interval.
func NewEvents(db *store.DB, interval time.Duration, log *slog.Logger) *Events {
	if log == nil {
		log = slog.Default()
	}
	return &Events{db: db, log: log, interval: interval, last: map[string]*burst{}}
}

// Add records e as a (the actor) unless a record of the same key was
// written less than the interval ago. A failed write is logged: the event
// happened whatever the database says.
func (ev *Events) Add(a Actor, key string, e Entry) {
	if ev == nil {
		return
	}
	now := time.Now()
	ev.mu.Lock()
	b := ev.last[key]
	if b != nil && now.Sub(b.at) < ev.interval {
		b.dropped++
		ev.mu.Unlock()
		return
	}
	dropped := 0
	if b != nil {
		dropped = b.dropped
	}
	if len(ev.last) >= maxKeys {
		for k, v := range ev.last {
			if now.Sub(v.at) >= ev.interval {
				delete(ev.last, k)
			}
		}
	}
	ev.last[key] = &burst{at: now}
	ev.mu.Unlock()
	if dropped > 0 {
		after, _ := e.After.(map[string]any)
		if after == nil {
			after = map[string]any{}
		}
		after["similar_not_recorded"] = dropped
		e.After = after
	}
	ctx, cancel := context.WithTimeout(With(context.Background(), a), 5*time.Second)
	defer cancel()
	if err := Write(ctx, ev.db, e); err != nil {
		ev.log.Warn("audit log: cannot record an event", "kind", e.Kind, "home", e.Home, "err", err)
	}
}
