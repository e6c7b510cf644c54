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

// maxKeys bounds the keys Events remembers (a login and a logout key per
// home: 10,000 homes need 20,000); beyond it, expired ones are forgotten,
// and if that is not enough, any (their next event is recorded at once).
const maxKeys = 50000

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
	dropped, ok := ev.admit(key, time.Now())
	if !ok {
		return
	}
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

// admit reports whether an event of key is recorded now, and how many of
// key were left out since the last recorded one.
func (ev *Events) admit(key string, now time.Time) (dropped int, ok bool) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	b := ev.last[key]
	if b != nil && now.Sub(b.at) < ev.interval {
		b.dropped++
		return 0, false
	}
	if b != nil {
		dropped = b.dropped
	}
	if len(ev.last) >= maxKeys {
		ev.prune(now)
	}
	ev.last[key] = &burst{at: now}
	return dropped, true
}

// prune forgets the expired keys and, while more than half of maxKeys are
// left, any: the next prune is maxKeys/2 new keys away. (Forgetting only
// the expired ones made every Add scan the whole map while all were
// recent: a reconnect storm of 10,000 homes spent half the cloud's CPU
// here.) Call with ev.mu held.
func (ev *Events) prune(now time.Time) {
	for k, v := range ev.last {
		if now.Sub(v.at) >= ev.interval {
			delete(ev.last, k)
		}
	}
	for k := range ev.last {
		if len(ev.last) <= maxKeys/2 {
			break
		}
		delete(ev.last, k)
	}
}
