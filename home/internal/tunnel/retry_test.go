package tunnel

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const min, max = 500 * time.Millisecond, 30 * time.Second
	tests := []struct {
		failures int
		jitter   float64
		want     time.Duration
	}{
		{0, 0, 250 * time.Millisecond},
		{0, 0.999999, 500 * time.Millisecond},
		{1, 0, 500 * time.Millisecond},
		{2, 0.5, 1500 * time.Millisecond},
		{5, 0, 8 * time.Second},
		{6, 0, 15 * time.Second},
		{7, 0.999999, 30 * time.Second}, // 64 s capped at 30 s
		{1000, 0, 15 * time.Second},     // no overflow however long the outage
		{1000, 0.999999, 30 * time.Second},
	}
	for _, tt := range tests {
		got := backoff(min, max, tt.failures, tt.jitter)
		if d := got - tt.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("backoff(%d failures, jitter %v) = %v, want %v", tt.failures, tt.jitter, got, tt.want)
		}
		if got > max {
			t.Errorf("backoff(%d, %v) = %v exceeds the cap %v", tt.failures, tt.jitter, got, max)
		}
	}
}

// TestRetryDelayWhileTheCloudIsUnreachable: with the production defaults, an
// attempt the cloud did not answer (refused, cut before the login) is
// retried within 2 s however long the outage has lasted, still jittered
// (half the cap at least, so a cloud's homes do not all knock at once); a
// cloud that answered and refused the login is asked ever more slowly, up
// to 30 s.
func TestRetryDelayWhileTheCloudIsUnreachable(t *testing.T) {
	cfg := Config{MinBackoff: DefaultMinBackoff, MaxBackoff: DefaultMaxBackoff, UnreachableBackoff: DefaultUnreachableBackoff}
	unreachable := unreachableError{errors.New("dial tcp 127.0.0.1:2222: connect: connection refused")}
	refused := errors.New("the cloud at 127.0.0.1:2222 refused the home's key")
	for failures := 0; failures <= 1000; failures++ {
		for _, jitter := range []float64{0, 0.5, 0.999999} {
			if d := cfg.retryDelay(unreachable, failures, jitter); d > DefaultUnreachableBackoff {
				t.Fatalf("unreachable after %d failures (jitter %v): wait %v, want at most %v", failures, jitter, d, DefaultUnreachableBackoff)
			}
		}
	}
	if lo, hi := cfg.retryDelay(unreachable, 1000, 0), cfg.retryDelay(unreachable, 1000, 0.999999); lo != time.Second || hi < 1999*time.Millisecond {
		t.Errorf("unreachable waits span %v..%v, want 1s..2s (jitter kept)", lo, hi)
	}
	if d := cfg.retryDelay(fmt.Errorf("SSH handshake: %w", unreachable), 1000, 0.999999); d > DefaultUnreachableBackoff {
		t.Errorf("a wrapped unreachable error waits %v", d)
	}
	if d := cfg.retryDelay(refused, 7, 0); d < 15*time.Second {
		t.Errorf("a refused login after 7 failures waits %v, want the exponential backoff (>= 15s)", d)
	}
	if d := cfg.retryDelay(refused, 1000, 0.999999); d > DefaultMaxBackoff {
		t.Errorf("a refused login waits %v, beyond the cap %v", d, DefaultMaxBackoff)
	}
}
