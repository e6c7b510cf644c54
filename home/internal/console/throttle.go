package console

import (
	"sync"
	"time"
)

// Login throttling. A client address gets a few free failures (typos), then
// waits 1 s, 2 s, 4 s... up to maxAddrWait before each next attempt; all
// addresses together get more free failures and wait at most maxAllWait, so
// a guesser with many addresses is bounded too while the owner is never
// locked out for long. Failures are forgotten after forgetAfter without one;
// a successful login clears them.
const (
	freeAddrFailures = 3
	freeAllFailures  = 10
	maxAddrWait      = 15 * time.Minute
	maxAllWait       = time.Minute
	forgetAfter      = time.Hour
	maxInFlight      = 4 // password checks at once (bcrypt costs CPU)
	maxTracked       = 4096
)

// throttle bounds password guessing, also in parallel: an address has one
// attempt in flight at a time, and a wait is decided before the password is
// checked, so parallel guesses cannot all slip in before the first failure
// counts.
type throttle struct {
	now      func() time.Time
	mu       sync.Mutex
	addrs    map[string]*backoff
	all      backoff
	inFlight int
}

type backoff struct {
	failures int
	last     time.Time // of the last failure
	until    time.Time // no attempt before
	busy     bool      // an attempt of this address is being checked
}

func newThrottle(now func() time.Time) *throttle {
	return &throttle{now: now, addrs: map[string]*backoff{}}
}

// begin admits a login attempt from addr, or says how long to wait. An
// admitted attempt must call done with its outcome.
func (t *throttle) begin(addr string) (done func(ok bool), wait time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	b := t.addrs[addr]
	if b == nil {
		if len(t.addrs) >= maxTracked {
			t.prune(now)
		}
		if len(t.addrs) >= maxTracked {
			return nil, time.Second // too many addresses failing: everyone waits
		}
		b = &backoff{}
		t.addrs[addr] = b
	}
	b.forget(now)
	t.all.forget(now)
	wait = max(b.until.Sub(now), t.all.until.Sub(now))
	if wait > 0 {
		return nil, wait
	}
	if b.busy || t.inFlight >= maxInFlight {
		return nil, time.Second
	}
	b.busy = true
	t.inFlight++
	return func(ok bool) {
		t.mu.Lock()
		defer t.mu.Unlock()
		b.busy = false
		t.inFlight--
		if ok {
			*b, t.all = backoff{}, backoff{}
			return
		}
		now := t.now()
		b.fail(now, freeAddrFailures, maxAddrWait)
		t.all.fail(now, freeAllFailures, maxAllWait)
	}, 0
}

// prune drops addresses that have nothing left to remember.
func (t *throttle) prune(now time.Time) {
	for a, b := range t.addrs {
		if b.forget(now); !b.busy && b.failures == 0 {
			delete(t.addrs, a)
		}
	}
}

func (b *backoff) forget(now time.Time) {
	if b.failures > 0 && now.Sub(b.last) >= forgetAfter && !now.Before(b.until) {
		b.failures, b.until = 0, time.Time{}
	}
}

func (b *backoff) fail(now time.Time, free int, most time.Duration) {
	b.failures++
	b.last = now
	if n := b.failures - free; n > 0 {
		d := most
		if n <= 20 && time.Second<<(n-1) < most {
			d = time.Second << (n - 1)
		}
		b.until = now.Add(d)
	}
}
