package homeauth

import (
	"fmt"
	"sync"
	"time"

	"homeport.dev/cloud/internal/problem"
	wire "homeport.dev/proto/homeauth"
)

// Default budgets: a home agent makes a few requests a minute; 4096 live
// nonces is about 13 signed requests a second for a whole MaxSkew window.
// An entry costs about 100 bytes, so the cloud-wide bound holds the cache
// under 10 MB.
const (
	DefaultPerHome = 4096
	DefaultTotal   = 1 << 16
)

// Nonces remembers the nonces of accepted signed requests until their
// request could no longer pass the time check (signed time + MaxSkew), so a
// captured request cannot be replayed. Each home is held to a budget of live
// nonces and the whole cache to a total, because every signed request makes
// the cloud hold memory.
type Nonces struct {
	perHome, total int

	mu        sync.Mutex
	homes     map[uint64]map[string]time.Time // home ID -> nonce -> expiry
	n         int
	lastSweep time.Time
}

// NewNonces returns an empty cache with the given budgets.
func NewNonces(perHome, total int) *Nonces {
	return &Nonces{perHome: perHome, total: total, homes: map[uint64]map[string]time.Time{}}
}

// sweepEvery bounds how often the whole cache is scanned for expired
// entries (also when it is full, so a flood cannot make every request scan).
const sweepEvery = 30 * time.Second

// Use records nonce for home until expires. It refuses a nonce still
// remembered for that home (a replay) and, with a *BusyError, a home over
// its budget or a full cache.
func (c *Nonces) Use(home uint64, nonce string, expires, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.lastSweep) >= sweepEvery || now.Before(c.lastSweep) ||
		c.n >= c.total && now.Sub(c.lastSweep) >= time.Second {
		c.sweep(now)
	}
	seen := c.homes[home]
	if exp, ok := seen[nonce]; ok && now.Before(exp) {
		return problem.New(problem.Unauthorized, "this signed request was already used (same nonce within %s): a replay, or a client that reuses nonces; sign every request with a fresh random nonce", 2*wire.MaxSkew)
	}
	if len(seen) >= c.perHome {
		c.sweepHome(home, now)
		if seen = c.homes[home]; len(seen) >= c.perHome {
			return &BusyError{RetryAfter: c.nextExpiry(seen, now),
				Message: fmt.Sprintf("this home sent more than %d signed requests in %s; slow down and retry later", c.perHome, wire.MaxSkew)}
		}
	}
	if c.n >= c.total {
		return &BusyError{RetryAfter: sweepEvery,
			Message: "the cloud is holding as many signed home requests as it allows; retry in a minute"}
	}
	if seen == nil {
		seen = map[string]time.Time{}
		c.homes[home] = seen
	}
	if _, ok := seen[nonce]; !ok { // an expired entry is reused
		c.n++
	}
	seen[nonce] = expires
	return nil
}

// Len returns how many nonces are remembered in all, and for home.
func (c *Nonces) Len(home uint64) (total, ofHome int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, len(c.homes[home])
}

func (c *Nonces) sweep(now time.Time) {
	for h := range c.homes {
		c.sweepHome(h, now)
	}
	c.lastSweep = now
}

func (c *Nonces) sweepHome(home uint64, now time.Time) {
	seen := c.homes[home]
	for k, exp := range seen {
		if !now.Before(exp) {
			delete(seen, k)
			c.n--
		}
	}
	if len(seen) == 0 {
		delete(c.homes, home)
	}
}

func (c *Nonces) nextExpiry(seen map[string]time.Time, now time.Time) time.Duration {
	next := wire.MaxSkew * 2
	for _, exp := range seen {
		if d := exp.Sub(now); d < next {
			next = d
		}
	}
	return max(next, time.Second)
}
