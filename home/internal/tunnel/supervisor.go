// Package tunnel keeps a profile's one SSH connection to its cloud up and
// carries every forward of the profile over it.
//
// A Supervisor is an explicit state machine (connecting, connected, backoff,
// stopped, replaced). It dials the cloud's SSH endpoint, checks the host key against
// the one pinned in the profile, logs in as the home, requests a remote
// forward (tcpip-forward) for each tunnel port and hands every forwarded
// connection to that port's handler, the gateway (forwards.go). Keepalives
// detect a silent cloud; a lost connection is replaced after a jittered backoff
// (retry.go: short while the cloud does not answer, exponential when it
// refuses) and every forward is requested again. A connection the cloud
// says another copy of the profile replaced is not (replaced.go). Status is
// always the truth about the live connection, and Subscribe streams it to a
// console (status.go). Dial opens connections the other way, to a private
// mapping's tunnel port (dial.go).
package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/proto/batchconn"
	"homeport.dev/proto/pooledio"
)

// Supervisor owns one profile's SSH connection and its forwards. Its
// methods are safe for concurrent use.
type Supervisor struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	status   Status           // Forwards is filled in by snapshot
	forwards map[int]*forward // the wanted set, by tunnel port
	cancels  map[int]uint64   // ports to cancel on the live connection (value: its generation)
	live     *ssh.Client      // nil unless connected
	gen      uint64           // generation of the latest connection
	up       chan struct{}    // closed while connected; replaced on loss
	subs     map[*subscriber]struct{}
	started  bool
	finished bool // the run loop has ended (or never will)

	kick     chan struct{} // forwards changed: the live connection re-syncs
	cancel   context.CancelFunc
	done     chan struct{} // closed when the run loop and all handlers have returned
	handlers sync.WaitGroup
}

// New returns a stopped supervisor for cfg; Start connects it.
func New(cfg Config) (*Supervisor, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Supervisor{
		cfg:      cfg,
		log:      cfg.Log.With("home", cfg.Home),
		status:   Status{Home: cfg.Home, State: StateStopped, Since: time.Now()},
		forwards: map[int]*forward{},
		cancels:  map[int]uint64{},
		up:       make(chan struct{}),
		subs:     map[*subscriber]struct{}{},
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}, nil
}

// Start runs the supervisor until ctx ends or Stop is called. It may be
// called once.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.finished {
		return errors.New("tunnel: supervisor already started")
	}
	s.started = true
	ctx, s.cancel = context.WithCancel(ctx)
	go s.run(ctx)
	return nil
}

// Stop closes the connection, waits until every goroutine of the supervisor
// (forward handlers included) has returned, and reports StateStopped.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	started := s.started
	if !started && !s.finished {
		s.finished = true
		s.closeSubscribersLocked()
		close(s.done)
	}
	s.mu.Unlock()
	if started {
		s.cancel()
	}
	<-s.done
}

// run is the state machine: connect, serve until the connection is lost,
// back off, repeat, until ctx ends.
func (s *Supervisor) run(ctx context.Context) {
	defer func() {
		s.handlers.Wait()
		s.mu.Lock()
		if s.status.State != StateReplaced {
			s.setStateLocked(StateStopped)
		}
		s.finished = true
		s.closeSubscribersLocked()
		s.mu.Unlock()
		close(s.done)
		s.log.Info("tunnel stopped")
	}()
	failures := 0
	for {
		s.mu.Lock()
		s.setStateLocked(StateConnecting)
		s.mu.Unlock()
		upFor, err := s.connectAndServe(ctx)
		if ctx.Err() != nil {
			return
		}
		var replaced *ReplacedError
		if errors.As(err, &replaced) {
			s.log.Warn("tunnel: another copy of this profile took the tunnel over; not reconnecting", "by", replaced.By, "since", replaced.Since)
			return
		}
		if upFor == 0 && s.relocate(ctx, err) {
			continue // moved to another edge: dial it now
		}
		if upFor >= s.cfg.StableAfter {
			failures = 0
		}
		wait := s.cfg.retryDelay(err, failures, rand.Float64())
		failures++
		s.mu.Lock()
		s.status.LastError = err
		if upFor == 0 {
			s.status.Attempts++
		}
		s.setStateLocked(StateBackoff)
		s.status.NextAttempt = time.Now().Add(wait)
		s.notifyLocked()
		s.mu.Unlock()
		if upFor == 0 {
			s.log.Warn("tunnel: cannot connect to the cloud", "addr", s.cfg.Addr, "err", err, "retry_in", wait.Round(time.Millisecond))
		} else {
			s.log.Warn("tunnel: connection lost", "addr", s.cfg.Addr, "err", err, "up_for", upFor.Round(time.Millisecond), "retry_in", wait.Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// connectAndServe makes one connection and serves it until it is lost. It
// returns how long the connection was up (0: never) and why it ended.
func (s *Supervisor) connectAndServe(ctx context.Context) (time.Duration, error) {
	client, notice, err := s.connect(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = s.serve(ctx, client, notice)
	return max(time.Since(start), time.Nanosecond), err
}

// connect dials the cloud and runs the SSH handshake within ConnectTimeout.
// It returns the client and the watch of the cloud's replaced notice. An
// error of an attempt the cloud did not answer as an SSH server is an
// unreachableError (retry.go).
func (s *Supervisor) connect(ctx context.Context) (*ssh.Client, *noticeWatch, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, nil, unreachableError{fmt.Errorf("dial the cloud's SSH endpoint %s: %w", s.cfg.Addr, err)}
	}
	// Reads take a pooled buffer only while data is there (proto/pooledio).
	conn := pooledio.NewConn(raw, pooledio.SSHReadSize)
	if s.cfg.batched {
		conn = batchconn.New(conn)
	}
	// The handshake has no context of its own: closing the connection
	// aborts it on timeout or Stop.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, s.cfg.Addr, s.cfg.clientConfig())
	if !stop() {
		if err == nil {
			c.Close()
		}
		return nil, nil, unreachableError{fmt.Errorf("SSH handshake with %s: %w", s.cfg.Addr, context.Cause(ctx))}
	}
	if err != nil {
		conn.Close()
		return nil, nil, handshakeError(s.cfg.Addr, s.cfg.Home, err)
	}
	reqs, notice := watchReplaced(reqs)
	return ssh.NewClient(c, chans, reqs), notice, nil
}

// handshakeError turns x/crypto's handshake errors into ones that say what
// to do. A cloud that failed the host key check or refused the login
// answered; any other failure (the connection cut before the login: a cloud
// starting or stopping, or over its limit of logins in progress) counts as
// unreachable.
func handshakeError(addr, home string, err error) error {
	var mismatch *HostKeyMismatchError
	if errors.As(err, &mismatch) {
		return mismatch
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		return fmt.Errorf("the cloud at %s refused the home's key for %q (home released, key replaced, account deactivated, wrong slug, or the home moved to another edge): %w", addr, home, loginRefused{err})
	}
	return unreachableError{fmt.Errorf("SSH handshake with %s: %w", addr, err)}
}

// serve runs one live connection: keepalives, forwarded channels and the
// forward requests, until the connection is lost or ctx ends. Every
// goroutine it starts has returned when it returns, except forward handlers,
// which the supervisor waits for when it stops. A connection the cloud
// closed because another copy of the profile replaced it ends with a
// *ReplacedError.
func (s *Supervisor) serve(parent context.Context, client *ssh.Client, notice *noticeWatch) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	forwarded := client.HandleChannelOpen("forwarded-tcpip")
	gen := s.connected(client)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		err := client.Wait()
		if err == nil {
			err = errors.New("the cloud closed the connection")
		}
		cancel(fmt.Errorf("connection lost: %w", err))
	}()
	go func() {
		defer wg.Done()
		s.keepalive(ctx, client, cancel)
	}()
	go func() {
		defer wg.Done()
		s.dispatch(ctx, forwarded)
	}()
	for ctx.Err() == nil {
		s.syncForwards(client, gen)
		select {
		case <-ctx.Done():
		case <-s.kick:
		}
	}
	err := context.Cause(ctx)
	client.Close()
	wg.Wait()
	if replaced := notice.replaced(); replaced != nil {
		err = replaced
	}
	s.disconnected(err, parent.Err() != nil)
	return err
}

// connected records a new live connection and returns its generation.
func (s *Supervisor) connected(client *ssh.Client) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.live = client
	s.cancels = map[int]uint64{}
	close(s.up)
	s.status.Attempts = 0
	s.status.Connects++
	s.setStateLocked(StateConnected)
	s.log.Info("tunnel: connected", "addr", s.cfg.Addr, "connects", s.status.Connects)
	return s.gen
}

// disconnected records the end of the live connection: every forward is
// down and, unless the supervisor is stopping, it backs off because of err
// (or, replaced, stays down for good).
func (s *Supervisor) disconnected(err error, stopping bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = nil
	s.up = make(chan struct{})
	now := time.Now()
	for _, f := range s.forwards {
		if f.up {
			f.up, f.since = false, now
		}
	}
	if stopping {
		s.notifyLocked()
		return
	}
	s.status.LastError = err
	var replaced *ReplacedError
	if errors.As(err, &replaced) {
		s.setStateLocked(StateReplaced)
		return
	}
	s.setStateLocked(StateBackoff)
}

// keepalive sends keepalive@openssh.com every Keepalive and declares the
// connection dead (fail, then close it) once a reply has not come within
// KeepaliveMissed intervals: the cloud, or the path to it, is gone even if
// TCP has not noticed. It returns when ctx ends or after failing.
func (s *Supervisor) keepalive(ctx context.Context, client *ssh.Client, fail func(error)) {
	t := time.NewTicker(s.cfg.Keepalive)
	defer t.Stop()
	limit := time.Duration(s.cfg.KeepaliveMissed) * s.cfg.Keepalive
	var wg sync.WaitGroup
	defer wg.Wait() // an unanswered request returns once the connection is closed
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		timeout := time.NewTimer(limit)
		select {
		case err := <-reply:
			timeout.Stop()
			if err != nil {
				fail(fmt.Errorf("keepalive: %w", err))
				return
			}
		case <-timeout.C:
			fail(fmt.Errorf("the cloud answered no keepalive for %s: connection presumed dead", limit))
			client.Close()
			return
		case <-ctx.Done():
			timeout.Stop()
			client.Close()
			return
		}
	}
}
