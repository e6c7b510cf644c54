package web_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"homeport.dev/cloud/internal/edges"
	"homeport.dev/cloud/internal/store"
)

// TestAdminSeesEdges: the admin's Edges page lists each edge with its SSH
// endpoint and homes, up while it heartbeats and down after 10 s of
// silence; a user's dashboard shows their home's edge's SSH endpoint.
func TestAdminSeesEdges(t *testing.T) {
	e := newEnv(t)
	e.user("root", true, true)
	now := time.Now().UTC()
	for _, ed := range []store.Edge{
		{Name: "east", SSHHost: "east.example.net", SSHPort: 2201, HostKey: "ssh-ed25519 AAAA", StartedAt: now, HeartbeatAt: now},
		{Name: "west", SSHHost: "west.example.net", SSHPort: 2202, HostKey: "ssh-ed25519 AAAA", StartedAt: now, HeartbeatAt: now.Add(-edges.DownAfter - time.Second)},
	} {
		if err := e.app.DB.Create(&ed).Error; err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser()
	b.login("root")
	status, page := b.get("/admin/edges")
	must(t, "edges page", status, page, 200, "east.example.net:2201", "west.example.net:2202")
	up := regexp.MustCompile(`<td>east</td><td><span class="ok">up</span>`)
	down := regexp.MustCompile(`<td>west</td><td><span class="error">down</span>`)
	if !up.MatchString(page) || !down.MatchString(page) {
		t.Errorf("edges page does not show east up and west down:\n%s", page)
	}

	alice := e.user("alice", true, false)
	h, err := e.app.Homes.Claim(context.Background(), alice, newKey(t))
	if err != nil || h.Edge != "east" {
		t.Fatalf("claim: edge %q (%v), want east, the live one", h.Edge, err)
	}
	a := e.browser()
	page = a.login("alice")
	must(t, "alice's dashboard", 200, page, 200, "east.example.net")
}
