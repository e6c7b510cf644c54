// Package acceptloop owns accept loops that outlive resource exhaustion:
// a temporary accept error (EMFILE, ENFILE, ECONNABORTED...) is retried with
// a backoff, as net/http does, and the loop keeps a state that readiness
// checks can report truthfully.
package acceptloop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// Backoff bounds: the first retry after 5 ms, doubling up to 1 s.
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// Loop accepts connections on one listener.
type Loop struct {
	Name string // what the listener is, for errors ("SSH endpoint")
	// OnError, if set, hears every temporary accept error (for a log line or
	// a metric); the loop keeps going.
	OnError func(err error, retryIn time.Duration)

	mu      sync.Mutex
	failing error // the last accept error, while retrying
	stopped error // why the loop ended for good
	started bool
}

// Serve accepts until ctx ends (returning nil) or the listener fails for
// good (returning the error). Every accepted connection goes to handle in a
// new goroutine; Serve waits for none of them.
func (l *Loop) Serve(ctx context.Context, ln net.Listener, handle func(net.Conn)) error {
	l.mu.Lock()
	l.started = true
	l.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err == nil {
			delay = 0
			l.setFailing(nil)
			go handle(c)
			continue
		}
		if ctx.Err() != nil {
			l.setStopped(fmt.Errorf("%s stopped", l.Name))
			return nil
		}
		if !Temporary(err) {
			err = fmt.Errorf("%s: accept: %w", l.Name, err)
			l.setStopped(err)
			return err
		}
		if delay == 0 {
			delay = minBackoff
		} else if delay *= 2; delay > maxBackoff {
			delay = maxBackoff
		}
		l.setFailing(err)
		if l.OnError != nil {
			l.OnError(err, delay)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
	}
}

// Temporary reports whether an accept error is worth retrying: resource
// exhaustion and aborted handshakes are; a closed listener is not.
func Temporary(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS, syscall.ENOMEM, syscall.EAGAIN, syscall.EINTR, syscall.EPROTO, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Check reports whether the loop accepts connections now: an error while it
// has not started, is retrying after accept errors, or has stopped.
func (l *Loop) Check(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.stopped != nil:
		return fmt.Errorf("not accepting: %w", l.stopped)
	case !l.started:
		return errors.New("not accepting yet")
	case l.failing != nil:
		return fmt.Errorf("not accepting: %w (retrying)", l.failing)
	}
	return nil
}

func (l *Loop) setFailing(err error) {
	l.mu.Lock()
	l.failing = err
	l.mu.Unlock()
}

func (l *Loop) setStopped(err error) {
	l.mu.Lock()
	l.stopped = err
	l.mu.Unlock()
}
