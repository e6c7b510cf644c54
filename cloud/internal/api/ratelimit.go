package api

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a token bucket per key (client address, username), for the
// unauthenticated endpoints that check passwords or create accounts.
type limiter struct {
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

func newLimiter(perMin int, window time.Duration) *limiter {
	return &limiter{perMin: perMin, window: window, buckets: map[string]*bucket{}}
}

// allow takes one token from every key's bucket; all must have one.
func (l *limiter) allow(keys ...string) bool {
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
