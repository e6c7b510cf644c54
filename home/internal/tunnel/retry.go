package tunnel

import (
	"errors"
	"time"
)

// unreachableError marks a failed attempt that the cloud did not answer as
// an SSH server: the dial was refused or timed out, or the connection was
// cut before the login (a cloud down, restarting, or over its limit of
// logins in progress). The next attempt comes soon, whatever the outage's
// length, so that traffic is back within seconds of the cloud; a cloud that
// answered and refused (the key, the host key check) is asked again ever
// more slowly.
type unreachableError struct{ error }

func (e unreachableError) Unwrap() error { return e.error }

// retryDelay returns how long to wait before the next attempt after
// failures consecutive failed attempts (or lost connections), the last of
// which ended with err: an exponential backoff capped at MaxBackoff, or at
// UnreachableBackoff while the cloud does not answer. jitter is a random
// value in [0, 1).
//
// An outage's length used to decide the wait: after 25 s without the cloud
// the backoff had reached 30 s, and traffic came back 21 s after the cloud
// was ready.
func (c Config) retryDelay(err error, failures int, jitter float64) time.Duration {
	limit := c.MaxBackoff
	var unreachable unreachableError
	if errors.As(err, &unreachable) {
		limit = min(limit, c.UnreachableBackoff)
	}
	return backoff(c.MinBackoff, limit, failures, jitter)
}

// backoff returns how long to wait before reconnect attempt number failures
// (0 for the first retry after a loss): first doubled per failure, capped
// at limit, with "equal jitter" so that many homes cut off by the same cloud
// restart do not all knock again in the same instant. jitter is a random
// value in [0, 1). The result always lies in [d/2, d] where d is the capped
// exponential delay, so it never exceeds limit.
func backoff(first, limit time.Duration, failures int, jitter float64) time.Duration {
	d := first
	for i := 0; i < failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := d / 2
	return half + time.Duration(jitter*float64(d-half))
}
