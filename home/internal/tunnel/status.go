package tunnel

// What a supervisor shows: its State and Status snapshot (Status), and
// the subscriptions that stream every change of it to a console
// (Subscribe).

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// State is the phase of a Supervisor's connection.
type State int

const (
	// StateConnecting: dialing the cloud and running the SSH handshake.
	StateConnecting State = iota
	// StateConnected: the SSH connection is up and forwards are requested
	// on it (each forward reports its own outcome).
	StateConnected
	// StateBackoff: the last attempt failed or the connection was lost;
	// waiting (Status.NextAttempt) before the next attempt.
	StateBackoff
	// StateStopped: Stop was called or the context of Start ended.
	StateStopped
	// StateReplaced: the cloud closed the connection because another copy
	// of the profile took the tunnel over (LastError is a *ReplacedError);
	// the supervisor has stopped and does not reconnect.
	StateReplaced
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateBackoff:
		return "backoff"
	case StateStopped:
		return "stopped"
	case StateReplaced:
		return "replaced"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText makes states read as their names in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Status is a snapshot of a Supervisor, always the truth about the live
// connection: what a console or `home status` shows.
type Status struct {
	Home  string    `json:"home"`
	State State     `json:"state"`
	Since time.Time `json:"since"` // when State was entered
	// LastError says why the last attempt failed or the last connection
	// ended; it stays set after a later success, as history.
	LastError error `json:"-"`
	// Attempts counts failed attempts since the last successful connection.
	Attempts int `json:"attempts"`
	// Connects counts successful connections since Start.
	Connects int `json:"connects"`
	// NextAttempt is when the next attempt starts, in StateBackoff.
	NextAttempt time.Time       `json:"next_attempt,omitzero"`
	Forwards    []ForwardStatus `json:"forwards"` // by tunnel port
}

// ForwardStatus is the state of one forward on the live connection.
type ForwardStatus struct {
	TunnelPort int       `json:"tunnel_port"`
	Up         bool      `json:"up"`
	Since      time.Time `json:"since"` // when Up last changed
	// LastError is the cloud's refusal of this forward, if it refused it on
	// the current (or, while disconnected, the last) connection.
	LastError error `json:"-"`
}

// Forward finds the status of the forward of port.
func (s Status) Forward(port int) (ForwardStatus, bool) {
	for _, f := range s.Forwards {
		if f.TunnelPort == port {
			return f, true
		}
	}
	return ForwardStatus{}, false
}

// MarshalJSON adds last_error as text.
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	return json.Marshal(struct {
		plain
		LastError string `json:"last_error,omitempty"`
	}{plain(s), errorText(s.LastError)})
}

// MarshalJSON adds last_error as text.
func (f ForwardStatus) MarshalJSON() ([]byte, error) {
	type plain ForwardStatus
	return json.Marshal(struct {
		plain
		LastError string `json:"last_error,omitempty"`
	}{plain(f), errorText(f.LastError)})
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

type subscriber struct{ c chan Status }

// Status returns a snapshot of the connection and its forwards.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}

// Subscribe returns a channel that holds the latest Status after every
// change (a slow reader skips intermediate snapshots but always gets the
// newest) and a function that ends the subscription. The current status is
// delivered at once; the channel is closed when the subscription ends or
// the supervisor stops.
func (s *Supervisor) Subscribe() (<-chan Status, func()) {
	sub := &subscriber{c: make(chan Status, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub.c <- s.snapshotLocked()
	if s.finished {
		close(sub.c)
		return sub.c, func() {}
	}
	s.subs[sub] = struct{}{}
	return sub.c, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[sub]; ok {
			delete(s.subs, sub)
			close(sub.c)
		}
	}
}

// setStateLocked enters state st and notifies subscribers.
func (s *Supervisor) setStateLocked(st State) {
	if s.status.State != st {
		s.status.State, s.status.Since = st, time.Now()
	}
	if st != StateBackoff {
		s.status.NextAttempt = time.Time{}
	}
	s.notifyLocked()
}

func (s *Supervisor) snapshotLocked() Status {
	st := s.status
	st.Forwards = make([]ForwardStatus, 0, len(s.forwards))
	for _, f := range s.forwards {
		st.Forwards = append(st.Forwards, ForwardStatus{TunnelPort: f.port, Up: f.up, Since: f.since, LastError: f.err})
	}
	slices.SortFunc(st.Forwards, func(a, b ForwardStatus) int { return a.TunnelPort - b.TunnelPort })
	return st
}

// notifyLocked replaces each subscriber's undelivered snapshot with the
// current one; it never blocks.
func (s *Supervisor) notifyLocked() {
	if len(s.subs) == 0 {
		return
	}
	st := s.snapshotLocked()
	for sub := range s.subs {
		select {
		case <-sub.c:
		default:
		}
		sub.c <- st
	}
}

func (s *Supervisor) closeSubscribersLocked() {
	s.notifyLocked()
	for sub := range s.subs {
		close(sub.c)
	}
	clear(s.subs)
}
