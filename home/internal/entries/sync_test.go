package entries_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"homeport.dev/home/internal/entries"
	"homeport.dev/home/internal/store"
	"homeport.dev/proto"
)

// cloud stands in for the cloud's mapping API (the interleavings these
// tests need cannot be forced on a real cloud): it keeps mappings like the
// cloud does, refusing a second mapping of one host, and lets a test run
// code in the middle of a create.
type cloud struct {
	mu       sync.Mutex
	ms       []proto.Mapping
	next     uint64
	creates  int
	inCreate func()
	slow     time.Duration
}

func (c *cloud) Mappings(context.Context, string) ([]proto.Mapping, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]proto.Mapping(nil), c.ms...), nil
}

func (c *cloud) CreateMapping(_ context.Context, _ string, req proto.MappingRequest) (proto.Mapping, error) {
	if c.inCreate != nil {
		c.inCreate()
	}
	time.Sleep(c.slow) // a slow network: widens the window two syncs race in
	c.mu.Lock()
	defer c.mu.Unlock()
	c.creates++
	c.next++
	m := proto.Mapping{ID: c.next, Scheme: req.Scheme, Host: req.Host, TunnelPort: 20000 + int(c.next)}
	c.ms = append(c.ms, m)
	return m, nil
}

func (c *cloud) DeleteMapping(_ context.Context, _ string, id uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.ms {
		if m.ID == id {
			c.ms = append(c.ms[:i], c.ms[i+1:]...)
			break
		}
	}
	return nil
}

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "home.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestConcurrentSyncsCreateOnce: the console's retry, a dashboard action and
// the CLI syncing at the same moment create each mapping once, not once per
// sync (they used to all see it missing and all create it).
func TestConcurrentSyncsCreateOnce(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	for _, h := range []string{"a.example.com", "b.example.com"} {
		if err := db.Add(ctx, &store.Entry{Scheme: "https", Host: h, Target: "localhost:3000", Mode: store.ModeTerminate, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	c := &cloud{slow: 20 * time.Millisecond}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := entries.Sync(ctx, c, "home", db, entries.Options{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if c.creates != 2 || len(c.ms) != 2 {
		t.Fatalf("4 concurrent syncs of 2 entries made %d creates, %d mappings; want 2 and 2", c.creates, len(c.ms))
	}
}

// TestSyncDoesNotReopenAnEntryClosedMeanwhile: an entry closed while a
// sync is talking to the cloud stays closed (the sync used to save the
// whole row it had read before, Enabled=true included).
func TestSyncDoesNotReopenAnEntryClosedMeanwhile(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	e := store.Entry{Scheme: "http", Host: "web.example.com", Target: "localhost:3000", Enabled: true}
	if err := db.Add(ctx, &e); err != nil {
		t.Fatal(err)
	}
	c := &cloud{inCreate: func() {
		closed := e
		closed.Enabled = false
		if err := db.Save(ctx, &closed); err != nil {
			t.Error(err)
		}
	}}
	if _, err := entries.Sync(ctx, c, "home", db, entries.Options{}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Entry(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Enabled {
		t.Fatal("the sync re-opened an entry the user closed while it ran")
	}
	// The next sync (the close's own) removes the mapping.
	if _, err := entries.Sync(ctx, c, "home", db, entries.Options{}); err != nil {
		t.Fatal(err)
	}
	if len(c.ms) != 0 {
		t.Fatalf("mappings left after the closed entry's sync: %+v", c.ms)
	}
}
