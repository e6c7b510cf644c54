package tunnel

import "time"

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
