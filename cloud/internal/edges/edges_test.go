package edges_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"homeport.dev/cloud/internal/edges"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/cloud/internal/store/pgtest"
)

var pg = pgtest.New()

func TestMain(m *testing.M) { pg.Main(m) }

// TestASilentEdgeIsDownAndGetsNoClaims: an edge whose last heartbeat is
// older than DownAfter is listed down and new homes go to the live edge
// with the fewest homes; with no live edge a home gets none (a single
// cloud), on both engines.
func TestASilentEdgeIsDownAndGetsNoClaims(t *testing.T) {
	for _, e := range pg.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, e.DSN(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			r := edges.New(db, store.Edge{}, func() int { return 0 }, slog.New(slog.NewTextHandler(io.Discard, nil)))
			pick := func() string {
				t.Helper()
				name, err := r.Pick(db.DB)
				if err != nil {
					t.Fatal(err)
				}
				return name
			}
			if got := pick(); got != "" {
				t.Fatalf("no edges: picked %q, want none", got)
			}
			now := time.Now().UTC()
			for _, ed := range []store.Edge{
				{Name: "a", SSHHost: "a.example.com", SSHPort: 22, HostKey: "k", StartedAt: now, HeartbeatAt: now},
				{Name: "b", SSHHost: "b.example.com", SSHPort: 22, HostKey: "k", StartedAt: now, HeartbeatAt: now},
				{Name: "c", SSHHost: "c.example.com", SSHPort: 22, HostKey: "k", StartedAt: now, HeartbeatAt: now.Add(-edges.DownAfter - time.Second)},
			} {
				if err := db.Create(&ed).Error; err != nil {
					t.Fatal(err)
				}
			}
			u := store.User{Username: "alice", Email: "a@example.org", PasswordHash: "x", Role: "user", Active: true}
			if err := db.Create(&u).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Create(&store.Home{Slot: 0, Slug: "h0", UserID: u.ID, PublicKey: "k", KeyFingerprint: "f0", Edge: "a"}).Error; err != nil {
				t.Fatal(err)
			}
			if got := pick(); got != "b" {
				t.Errorf("picked %q, want b (a has a home, c is down)", got)
			}
			list, err := r.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 3 || !list[0].Up || list[0].Homes != 1 || !list[1].Up || list[2].Up {
				t.Errorf("edges %+v, want a up with 1 home, b up, c down", list)
			}
			if err := r.Check(ctx, "c"); err == nil {
				t.Errorf("a move to the down edge c was allowed")
			}
			if err := r.Check(ctx, "zz"); err == nil {
				t.Errorf("a move to an unknown edge was allowed")
			}
		})
	}
}
