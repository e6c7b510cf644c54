// Package ratelimit owns the token buckets that slow down password guessing
// and account creation, and each account's changes, shared by the API and
// the web UI so both draw on one budget per client address, username or
// account.
package ratelimit

import (
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket per key (client address, username), for the
// unauthenticated endpoints that check passwords or create accounts.
type Limiter struct {
	mu      sync.Mutex
	perMin  int
	window  time.Duration
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// New allows perMin requests per window per key (burst the same).
func New(perMin int, window time.Duration) *Limiter {
	return &Limiter{perMin: perMin, window: window, buckets: map[string]*bucket{}}
}

// AllowWrite spends one of account id's changes (Writes budgets them per
// account: API calls of its tokens and homes, and its web forms, together).
func (l *Limiter) AllowWrite(id uint64) bool {
	return l.Allow("writes:" + strconv.FormatUint(id, 10))
}

// Allow takes one token from every key's bucket; all must have one.
func (l *Limiter) Allow(keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.swept) > l.window {
		// Idle buckets are full again; forgetting them bounds memory.
		for k, b := range l.buckets {
			if now.Sub(b.seen) > l.window {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	ok := true
	for _, k := range keys {
		b := l.buckets[k]
		if b == nil {
			b = &bucket{lim: rate.NewLimiter(rate.Every(l.window/time.Duration(l.perMin)), l.perMin)}
			l.buckets[k] = b
		}
		b.seen = now
		if !b.lim.AllowN(now, 1) {
			ok = false
		}
	}
	return ok
}
