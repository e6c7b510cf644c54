package store_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/config/configtest"
	"homeport.dev/home/internal/store"
)

// TestEntriesAreTheFileAndTheCache: entries are config.yaml's forwards in
// its order joined with the cache; a duplicate is refused; removing one
// drops its cache line; nothing is written on top of an invalid hand edit.
func TestEntriesAreTheFileAndTheCache(t *testing.T) {
	ctx := context.Background()
	p := configtest.Profile(t, "")
	db := store.Open(p)
	web := store.Entry{Scheme: "http", Host: "web.example.com", Target: "localhost:3000", Enabled: true, MappingID: 7, TunnelPort: 20007}
	ssh := store.Entry{Scheme: "tcp", PublicPort: 10001, Target: "localhost:22", Enabled: true}
	for _, e := range []*store.Entry{&web, &ssh} {
		if err := db.Add(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if web.ID != 1 || ssh.ID != 2 {
		t.Errorf("IDs %d %d, want the positions 1 and 2", web.ID, ssh.ID)
	}
	dup := store.Entry{Scheme: "http", Host: "web.example.com", Target: "localhost:4000", Enabled: true}
	if err := db.Add(ctx, &dup); !errors.Is(err, store.ErrDuplicate) || !strings.Contains(err.Error(), "home forwards rm 1") {
		t.Errorf("duplicate: %v", err)
	}
	es, err := db.Entries(ctx)
	if err != nil || len(es) != 2 || es[0].MappingID != 7 || es[0].TunnelPort != 20007 || es[1].Public() != "tcp:10001" {
		t.Fatalf("entries: %+v %v", es, err)
	}
	if err := db.Remove(ctx, web.Public()); err != nil {
		t.Fatal(err)
	}
	if _, ok := config.ReadCache(p.CachePath())[web.Public()]; ok {
		t.Error("the removed entry's cache line stayed")
	}
	if e, err := db.Entry(ctx, 1); err != nil || e.Public() != "tcp:10001" {
		t.Errorf("entry 1 after the removal: %+v %v", e, err)
	}
	b, _ := os.ReadFile(p.ConfigPath())
	broken := strings.Replace(string(b), "target: localhost:22", "target: localhost:0", 1)
	os.WriteFile(p.ConfigPath(), []byte(broken), 0o600)
	if err := db.SetEnabled(ctx, "tcp:10001", false); err == nil || !strings.Contains(err.Error(), "forwards[0].target:") {
		t.Errorf("closing on top of an invalid file: %v", err)
	}
	if err := db.Add(ctx, &store.Entry{Scheme: "http", Host: "new.example.com", Target: "localhost:1", Enabled: true}); err == nil {
		t.Error("an entry was added on top of an invalid file")
	}
	if after, _ := os.ReadFile(p.ConfigPath()); string(after) != broken {
		t.Errorf("the invalid file was rewritten:\n%s", after)
	}
}
