// Package budget owns what one home may make the edge hold at once: open
// channels (per connection and per home), channel opens still pending, and
// the process-wide share of file descriptors that tunnels may use. A budget
// is taken before the resource is, and a refusal says which limit was hit.
package budget

import (
	"fmt"
	"sync"
)

// Limits are the budgets; zero means the default.
type Limits struct {
	ChannelsPerHome int // open channels of one home, both directions, all its connections
	ChannelsPerConn int // open channels of one SSH connection
	PendingPerHome  int // direct-tcpip opens of one home still being dialled
	Total           int // open channels of every home together (the edge's fd share)
}

// Defaults, sized so that 1,000 homes at their limits fit the fd budget of
// the shipped units (LimitNOFILE=262144): 1,000 x (64 channels + 32 pending
// + 16 listeners + 1 connection) = 113,000 descriptors.
const (
	DefaultChannelsPerHome = 64
	DefaultPendingPerHome  = 32
)

// Reason names the limit a refusal hit (a metric label and a log key).
type Reason string

// Refusal reasons.
const (
	HomeChannels Reason = "home_channels"
	ConnChannels Reason = "conn_channels"
	Pending      Reason = "pending_opens"
	EdgeChannels Reason = "edge_channels"
)

// Refusal is the error of a request over budget.
type Refusal struct {
	Reason Reason
	Limit  int
}

func (r *Refusal) Error() string {
	switch r.Reason {
	case HomeChannels:
		return fmt.Sprintf("this home has %d channels open, its limit", r.Limit)
	case ConnChannels:
		return fmt.Sprintf("this connection has %d channels open, its limit", r.Limit)
	case Pending:
		return fmt.Sprintf("this home has %d channel opens pending, its limit", r.Limit)
	}
	return fmt.Sprintf("the edge has %d channels open, its limit; try again later", r.Limit)
}

// Ledger counts what every home holds. The zero value is not usable: use New.
type Ledger struct {
	l Limits

	mu      sync.Mutex
	homes   map[uint64]*usage
	conns   map[uint64]int
	total   int
	pending int
}

type usage struct{ channels, pending int }

// New returns a ledger enforcing l.
func New(l Limits) *Ledger {
	if l.ChannelsPerHome <= 0 {
		l.ChannelsPerHome = DefaultChannelsPerHome
	}
	if l.ChannelsPerConn <= 0 || l.ChannelsPerConn > l.ChannelsPerHome {
		l.ChannelsPerConn = l.ChannelsPerHome
	}
	if l.PendingPerHome <= 0 {
		l.PendingPerHome = DefaultPendingPerHome
	}
	if l.Total <= 0 {
		l.Total = 1 << 30
	}
	return &Ledger{l: l, homes: map[uint64]*usage{}, conns: map[uint64]int{}}
}

// Limits returns the budgets in force.
func (b *Ledger) Limits() Limits { return b.l }

// Channel takes one channel of home's budget on connection conn. The
// release function gives it back (call it exactly once).
func (b *Ledger) Channel(home, conn uint64) (release func(), err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.use(home)
	switch {
	case b.total >= b.l.Total:
		return nil, &Refusal{EdgeChannels, b.l.Total}
	case u.channels >= b.l.ChannelsPerHome:
		return nil, &Refusal{HomeChannels, b.l.ChannelsPerHome}
	case b.conns[conn] >= b.l.ChannelsPerConn:
		return nil, &Refusal{ConnChannels, b.l.ChannelsPerConn}
	}
	u.channels++
	b.conns[conn]++
	b.total++
	return b.once(func() {
		u.channels--
		if b.conns[conn]--; b.conns[conn] <= 0 {
			delete(b.conns, conn)
		}
		b.total--
		b.forget(home, u)
	}), nil
}

// Pending takes one pending open of home's budget: held from the channel
// request until it is answered (accepted, refused or dialled).
func (b *Ledger) Pending(home uint64) (release func(), err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.use(home)
	if u.pending >= b.l.PendingPerHome {
		return nil, &Refusal{Pending, b.l.PendingPerHome}
	}
	u.pending++
	b.pending++
	return b.once(func() {
		u.pending--
		b.pending--
		b.forget(home, u)
	}), nil
}

// Usage is what one home holds now.
func (b *Ledger) Usage(home uint64) (channels, pending int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if u := b.homes[home]; u != nil {
		return u.channels, u.pending
	}
	return 0, 0
}

// Total is the number of channels open on the edge.
func (b *Ledger) Total() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

func (b *Ledger) use(home uint64) *usage {
	u := b.homes[home]
	if u == nil {
		u = &usage{}
		b.homes[home] = u
	}
	return u
}

// forget drops an idle home's entry, so the map holds only homes that hold
// something (called with mu held).
func (b *Ledger) forget(home uint64, u *usage) {
	if u.channels == 0 && u.pending == 0 && b.homes[home] == u {
		delete(b.homes, home)
	}
}

// once wraps a release (run under mu) so a second call does nothing.
func (b *Ledger) once(f func()) func() {
	var done bool
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if !done {
			done = true
			f()
		}
	}
}
