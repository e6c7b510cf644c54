package console

import (
	"fmt"
	"testing"
	"time"
)

// TestThrottleBoundsGuessersWithManyAddresses: failures from many addresses
// together make every address wait, at most maxAllWait; a success clears
// the wait.
func TestThrottleBoundsGuessersWithManyAddresses(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(func() time.Time { return now })
	for i := range freeAllFailures + 1 {
		done, wait := th.begin(fmt.Sprintf("10.0.0.%d", i))
		if done == nil {
			t.Fatalf("attempt %d from a fresh address waits %v", i, wait)
		}
		done(false)
	}
	if done, wait := th.begin("10.0.1.1"); done != nil || wait != time.Second {
		t.Fatalf("after %d failures overall a fresh address waits %v, want 1s", freeAllFailures+1, wait)
	}
	for i := range 30 { // the wait grows, and stops growing at maxAllWait
		now = now.Add(maxAllWait)
		done, wait := th.begin(fmt.Sprintf("10.0.1.%d", i))
		if done == nil {
			t.Fatalf("after waiting %v, still %v to wait", maxAllWait, wait)
		}
		done(false)
	}
	if _, wait := th.begin("10.0.2.1"); wait != maxAllWait {
		t.Fatalf("after many failures a fresh address waits %v, want %v", wait, maxAllWait)
	}
	now = now.Add(maxAllWait)
	done, _ := th.begin("10.0.2.1")
	done(true)
	if done, wait := th.begin("10.0.3.1"); done == nil {
		t.Fatalf("after a successful login a fresh address waits %v", wait)
	}
}
