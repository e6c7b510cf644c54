package audit

import (
	"fmt"
	"testing"
	"time"
)

// TestEventsForgetKeysBeyondTheBound admits three times maxKeys new keys
// within the interval (a reconnect storm of many homes): the recorder
// remembers at most maxKeys of them, and a key it still remembers is
// still rate-limited. It used to forget only expired keys, so with every
// key recent it grew without bound and scanned them all on each event.
func TestEventsForgetKeysBeyondTheBound(t *testing.T) {
	ev := NewEvents(nil, time.Hour, nil)
	now := time.Now()
	for i := range 3 * maxKeys {
		if _, ok := ev.admit(fmt.Sprint("ssh.connect:", i), now); !ok {
			t.Fatalf("the first event of key %d was not recorded", i)
		}
	}
	if n := len(ev.last); n > maxKeys {
		t.Fatalf("%d keys remembered, want at most %d", n, maxKeys)
	}
	last := fmt.Sprint("ssh.connect:", 3*maxKeys-1)
	if _, ok := ev.admit(last, now.Add(time.Second)); ok {
		t.Fatal("a second event of the newest key within the interval was recorded")
	}
}
