package ratelimit

import (
	"testing"
	"time"
)

func TestEveryKeyMustHaveAToken(t *testing.T) {
	l := New(3, time.Minute)
	for i := 0; i < 3; i++ {
		if !l.Allow("ip:a", "user:x") {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
	}
	if l.Allow("ip:a", "user:y") {
		t.Errorf("the exhausted address was allowed for another user")
	}
	if l.Allow("ip:b", "user:x") {
		t.Errorf("the exhausted user was allowed from another address")
	}
	if !l.Allow("ip:c", "user:z") {
		t.Errorf("an unrelated address and user were refused")
	}
}
