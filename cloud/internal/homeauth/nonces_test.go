package homeauth

import (
	"fmt"
	"testing"
	"time"

	"homeport.dev/cloud/internal/problem"
	wire "homeport.dev/proto/homeauth"
)

func TestNoncesRefuseReplaysUntilTheRequestWouldBeStale(t *testing.T) {
	c := NewNonces(4, 100)
	now := time.Unix(1_800_000_000, 0)
	signed := now.Add(-time.Minute)
	expires := signed.Add(wire.MaxSkew)
	if err := c.Use(1, "n1", expires, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Use(1, "n1", expires, now.Add(wire.MaxSkew-time.Minute-time.Second)); problem.KindOf(err) != problem.Unauthorized {
		t.Errorf("replay just before the request goes stale: %v, want unauthorized", err)
	}
	if err := c.Use(2, "n1", expires, now); err != nil {
		t.Errorf("the same nonce for another home: %v", err)
	}
	// Once the signed time is MaxSkew old the time check refuses the
	// request, so the nonce is forgotten.
	if err := c.Use(1, "n1", expires.Add(wire.MaxSkew), expires); err != nil {
		t.Errorf("after expiry: %v", err)
	}
}

func TestNoncesBudgetPerHomeAndInTotal(t *testing.T) {
	c := NewNonces(3, 5)
	now := time.Unix(1_800_000_000, 0)
	exp := now.Add(wire.MaxSkew)
	for i := range 3 {
		if err := c.Use(1, fmt.Sprint(i), exp, now); err != nil {
			t.Fatal(err)
		}
	}
	err := c.Use(1, "x", exp, now)
	if b, ok := IsBusy(err); !ok || b.RetryAfter != wire.MaxSkew {
		t.Fatalf("4th nonce of home 1: %v, want busy for %s", err, wire.MaxSkew)
	}
	for i := range 2 {
		if err := c.Use(2, fmt.Sprint(i), exp, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := IsBusy(c.Use(3, "y", exp, now)); !ok {
		t.Fatal("6th nonce in all accepted over the total budget")
	}
	if total, one := c.Len(1); total != 5 || one != 3 {
		t.Errorf("len = %d, %d; want 5, 3", total, one)
	}
	// Expired entries free both budgets.
	later := exp.Add(time.Second)
	if err := c.Use(1, "x", later.Add(wire.MaxSkew), later); err != nil {
		t.Errorf("after expiry, home 1: %v", err)
	}
	if err := c.Use(3, "y", later.Add(wire.MaxSkew), later); err != nil {
		t.Errorf("after expiry, home 3: %v", err)
	}
	if total, _ := c.Len(1); total != 2 {
		t.Errorf("%d nonces remembered after expiry, want 2", total)
	}
}
