package edges_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/edges"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/store"
)

// TestParallelClaimsSpreadEvenlyOverEdges: 24 claims at once on PostgreSQL
// with two live edges give each edge 12 homes: the claim's guard makes
// each count the homes per edge after the one before it inserted.
func TestParallelClaimsSpreadEvenlyOverEdges(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, pg.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC()
	for _, name := range []string{"a", "b"} {
		if err := db.Create(&store.Edge{Name: name, SSHHost: name + ".example.net", SSHPort: 22, HostKey: "k", StartedAt: now, HeartbeatAt: now}).Error; err != nil {
			t.Fatal(err)
		}
	}
	r := edges.New(db, store.Edge{}, func() int { return 0 }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	layout := homes.DefaultLayout
	layout.Slots = 32
	hs, err := homes.New(db, homes.Options{Layout: layout, HomesPerUser: 1, PickEdge: r.Pick, EdgeUp: r.Check})
	if err != nil {
		t.Fatal(err)
	}
	const n = 24
	users := make([]store.User, n)
	for i := range users {
		users[i] = store.User{Username: fmt.Sprintf("u%d", i), Email: "u@example.org", PasswordHash: "x", Role: "user", Active: true}
		if err := db.Create(&users[i]).Error; err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, pub := cloudtest.NewKey(t)
			_, err := hs.Claim(ctx, u, pub)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a claim failed: %v", err)
		}
	}
	list, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Homes != n/2 || list[1].Homes != n/2 {
		t.Errorf("homes per edge after %d parallel claims: %+v, want %d each", n, list, n/2)
	}
}
