package account

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"homeport.dev/cloud/internal/store"
)

// TestWatchInactiveSeesChangesMadeThroughTheDatabase: the watcher reports
// the inactive owners of homes (not pending signups without a home), and a
// change written by another handle on the same database file (as the
// `cloud users` CLI does from its own process) reaches it.
func TestWatchInactiveSeesChangesMadeThroughTheDatabase(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "cloud.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	var alice, bob store.User
	for i, u := range []*store.User{&alice, &bob, {}} {
		*u = store.User{Username: []string{"alice", "bob", "pending"}[i], Email: "x@example.com", PasswordHash: "x", Role: "user", Active: i < 2}
		if err := db.Create(u).Error; err != nil {
			t.Fatal(err)
		}
	}
	for i, u := range []store.User{alice, bob} {
		h := store.Home{Slot: i, Slug: u.Username + "home", UserID: u.ID, PublicKey: "k", KeyFingerprint: u.Username}
		if err := db.Create(&h).Error; err != nil {
			t.Fatal(err)
		}
	}

	type report struct {
		inactive []uint64
		changed  bool
	}
	reports := make(chan report, 100)
	go s.WatchInactive(ctx, 10*time.Millisecond, func(ids []uint64, changed bool) {
		select {
		case reports <- report{ids, changed}:
		case <-ctx.Done():
		}
	})
	next := func(want []uint64) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case r := <-reports:
				if r.changed {
					if !slices.Equal(r.inactive, want) {
						t.Fatalf("inactive owners = %v, want %v", r.inactive, want)
					}
					return
				}
			case <-deadline:
				t.Fatalf("no change reported, want %v", want)
			}
		}
	}
	next(nil) // the pending signup owns no home

	other, err := store.Open(ctx, path) // another process's handle
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cli, _ := New(other)
	if _, err := cli.SetActive(ctx, "bob", false); err != nil {
		t.Fatal(err)
	}
	next([]uint64{bob.ID})
	if _, err := cli.SetActive(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}
	next([]uint64{alice.ID, bob.ID})
	if _, err := cli.SetActive(ctx, "bob", true); err != nil {
		t.Fatal(err)
	}
	next([]uint64{alice.ID})
	if ok, err := s.Active(ctx, alice.ID); ok || err != nil {
		t.Errorf("Active(alice) = %v, %v after deactivation", ok, err)
	}
}
