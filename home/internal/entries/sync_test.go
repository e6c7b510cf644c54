package entries_test

import (
	"context"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"homeport.dev/home/internal/config/configtest"
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
	m := proto.Mapping{ID: c.next, Name: req.Name, Scheme: req.Scheme, Host: req.Host, PublicPort: req.PublicPort, Private: req.Private, TunnelPort: 20000 + int(c.next)}
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
	return store.Open(configtest.Profile(t, ""))
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

// TestSyncDoesNotUndoAHandEdit: a forward closed by hand in config.yaml
// while a sync is talking to the cloud stays closed (a sync writes only the
// cache, never config.yaml), and the next sync removes its mapping.
func TestSyncDoesNotUndoAHandEdit(t *testing.T) {
	ctx := context.Background()
	p := configtest.Profile(t, "")
	db := store.Open(p)
	e := store.Entry{Scheme: "http", Host: "web.example.com", Target: "localhost:3000", Enabled: true}
	if err := db.Add(ctx, &e); err != nil {
		t.Fatal(err)
	}
	c := &cloud{inCreate: func() {
		b, _ := os.ReadFile(p.ConfigPath())
		closed := strings.Replace(string(b), "target: localhost:3000", "target: localhost:3000\n    enabled: false", 1)
		if closed == string(b) {
			t.Error("the test's hand edit did not apply:\n" + string(b))
		}
		os.WriteFile(p.ConfigPath(), []byte(closed), 0o600)
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
	if _, err := entries.Sync(ctx, c, "home", db, entries.Options{}); err != nil {
		t.Fatal(err)
	}
	if len(c.ms) != 0 {
		t.Fatalf("mappings left after the closed entry's sync: %+v", c.ms)
	}
}

// TestSyncRebuildsAMissingCache: a profile copied without its cache (only
// config.yaml's forwards) finds its mappings on the cloud by scheme and
// host, public port, or (private) name:
// nothing is created or removed, and the cache has every ID and port again.
func TestSyncRebuildsAMissingCache(t *testing.T) {
	ctx := context.Background()
	p := configtest.Profile(t, `forwards:
  - scheme: https
    host: app.example.com
    target: localhost:3000
  - scheme: tcp
    public_port: 10001
    target: localhost:22
  - scheme: tcp
    private: true
    name: gpu-ui
    target: localhost:7860
`)
	c := &cloud{next: 40, ms: []proto.Mapping{
		{ID: 31, Name: "gpu-ui", Scheme: "tcp", Private: true, TunnelPort: 20031},
		{ID: 32, Scheme: "tcp", PublicPort: 10001, TunnelPort: 20032},
		{ID: 33, Scheme: "https", Host: "app.example.com", TunnelPort: 20033},
	}}
	if _, err := os.Stat(p.CachePath()); err == nil {
		t.Fatal("the test profile has a cache")
	}
	db := store.Open(p)
	rep, err := entries.Sync(ctx, c, "home", db, entries.Options{})
	if err != nil || !rep.InSync {
		t.Fatalf("sync: %+v %v", rep, err)
	}
	if c.creates != 0 || len(c.ms) != 3 {
		t.Fatalf("the sync made %d mappings and left %d of 3: it did not recognise the cloud's", c.creates, len(c.ms))
	}
	es, err := db.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{"https://app.example.com": {33, 20033}, "tcp:10001": {32, 20032}, "private:gpu-ui": {31, 20031}}
	for _, e := range es {
		if w := want[e.Public()]; int(e.MappingID) != w[0] || e.TunnelPort != w[1] {
			t.Errorf("%s: mapping %d port %d, want %v", e.Public(), e.MappingID, e.TunnelPort, w)
		}
	}
	if _, err := os.Stat(p.CachePath()); err != nil {
		t.Errorf("no cache written: %v", err)
	}
}

// TestPrivateEntriesPairByName: private entries find their mappings by
// name, whatever order the cloud lists them in and whatever the cache
// says; a private mapping no entry names (one an older cloud named
// private-ID) is removed, and a new entry's mapping carries its name.
func TestPrivateEntriesPairByName(t *testing.T) {
	ctx := context.Background()
	p := configtest.Profile(t, `forwards:
  - scheme: tcp
    private: true
    name: gpu-ui
    target: localhost:7860
  - scheme: tcp
    private: true
    name: jupyter
    target: localhost:8888
  - scheme: tcp
    private: true
    name: ollama
    target: localhost:11434
`)
	c := &cloud{next: 40, ms: []proto.Mapping{
		{ID: 31, Name: "jupyter", Scheme: "tcp", Private: true, TunnelPort: 20031},
		{ID: 32, Name: "private-32", Scheme: "tcp", Private: true, TunnelPort: 20032},
		{ID: 33, Name: "gpu-ui", Scheme: "tcp", Private: true, TunnelPort: 20033},
	}}
	db := store.Open(p)
	rep, err := entries.Sync(ctx, c, "home", db, entries.Options{})
	if err != nil || !rep.InSync {
		t.Fatalf("sync: %+v %v", rep, err)
	}
	es, err := db.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"private:gpu-ui": 33, "private:jupyter": 31, "private:ollama": 41}
	for _, e := range es {
		if e.MappingID != want[e.Public()] {
			t.Errorf("%s: mapping %d, want %d", e.Public(), e.MappingID, want[e.Public()])
		}
	}
	names := map[string]bool{}
	for _, m := range c.ms {
		names[m.Name] = true
	}
	if len(c.ms) != 3 || !names["gpu-ui"] || !names["jupyter"] || !names["ollama"] {
		t.Errorf("the cloud's private mappings after the sync: %+v, want gpu-ui, jupyter and ollama", c.ms)
	}
	var removed bool
	for _, ch := range rep.Changes {
		removed = removed || ch.Action == "removed" && ch.What == "private:private-32"
	}
	if !removed {
		t.Errorf("the report does not say private:private-32 was removed: %+v", rep.Changes)
	}
}

// TestDisconnectByDomainTouchesOnlyItsEntries: --domain X --disconnect
// removes X's mappings only, the home's own syncs leave them unmapped
// (a console's reload used to map them again), and the user's sync maps
// them again; a filter that matches nothing is refused and changes nothing.
func TestDisconnectByDomainTouchesOnlyItsEntries(t *testing.T) {
	ctx := context.Background()
	p := configtest.Profile(t, `forwards:
  - scheme: https
    host: app.example.com
    target: localhost:3000
  - scheme: http
    host: www.example.org
    target: localhost:3001
  - scheme: tcp
    public_port: 10001
    target: localhost:22
  - scheme: tcp
    private: true
    name: gpu-ui
    target: localhost:7860
`)
	db := store.Open(p)
	c := &cloud{}
	if rep, err := entries.Sync(ctx, c, "home", db, entries.Options{}); err != nil || !rep.InSync || len(c.ms) != 4 {
		t.Fatalf("first sync: %+v %v, %d mappings", rep, err, len(c.ms))
	}
	mapped := func() map[string]bool {
		es, err := db.Entries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, e := range es {
			m[e.Public()] = e.TunnelPort != 0
		}
		return m
	}
	_, err := entries.Sync(ctx, c, "home", db, entries.Options{Domain: "nomatch.net", Disconnect: true})
	if err == nil || !strings.Contains(err.Error(), "matches no forward") || !strings.Contains(err.Error(), "app.example.com, www.example.org") {
		t.Fatalf("--domain nomatch.net: %v, want a refusal listing the names there are", err)
	}
	if len(c.ms) != 4 {
		t.Fatalf("a refused filter removed mappings: %+v", c.ms)
	}

	rep, err := entries.Sync(ctx, c, "home", db, entries.Options{Domain: "Example.COM", Disconnect: true})
	if err != nil || !rep.InSync {
		t.Fatalf("--domain example.com --disconnect: %+v %v", rep, err)
	}
	want := map[string]bool{"https://app.example.com": false, "http://www.example.org": true, "tcp:10001": true, "private:gpu-ui": true}
	if got := mapped(); !maps.Equal(got, want) {
		t.Fatalf("after disconnecting example.com, mapped: %v, want %v", got, want)
	}
	if len(c.ms) != 3 {
		t.Fatalf("the cloud kept %d mappings, want 3 (only app.example.com's removed): %+v", len(c.ms), c.ms)
	}
	// The running agent's own sync (a reload) leaves it unmapped.
	if _, err := entries.Sync(ctx, c, "home", db, entries.Options{}); err != nil {
		t.Fatal(err)
	}
	if got := mapped(); got["https://app.example.com"] || len(c.ms) != 3 {
		t.Fatalf("the home's own sync mapped a disconnected entry again: %v %+v", got, c.ms)
	}
	// The user's sync-tunnels maps it again.
	if _, err := entries.Sync(ctx, c, "home", db, entries.Options{Connect: true}); err != nil {
		t.Fatal(err)
	}
	if got := mapped(); !got["https://app.example.com"] || len(c.ms) != 4 {
		t.Fatalf("sync-tunnels did not map the entry again: %v %+v", got, c.ms)
	}
}
