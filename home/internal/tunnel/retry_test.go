package tunnel

import (
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
