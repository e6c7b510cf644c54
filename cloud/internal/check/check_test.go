package check

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/haproxy"
	"homeport.dev/cloud/internal/store"
)

func TestRunFindsLooseModesAndMissingState(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]string{"--data", dir, "--haproxy", "off", "--api-addr", "127.0.0.1:8000"})
	if err != nil {
		t.Fatal(err)
	}
	if got := Run(context.Background(), cfg); len(got) != 3 || !strings.Contains(got[0].Fix, "chmod 750") { // open data dir, no database, no host key
		t.Fatalf("fresh dir findings = %+v", got)
	}
	os.Chmod(dir, 0o700)
	got := Run(context.Background(), cfg)
	if len(got) != 2 {
		t.Fatalf("fresh dir findings = %+v", got)
	}
	for _, p := range []string{cfg.DBPath(), cfg.HostKeyPath()} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got = Run(context.Background(), cfg)
	if len(got) != 2 || !strings.Contains(got[0].Fix, "chmod 600") {
		t.Fatalf("loose modes: %+v", got)
	}
	for _, p := range []string{cfg.DBPath(), cfg.HostKeyPath()} {
		os.Chmod(p, 0o600)
	}
	if got := Run(context.Background(), cfg); len(got) != 0 {
		t.Errorf("clean state: %+v", got)
	}
}

func TestNetworkSocketIsFound(t *testing.T) {
	for line, bad := range map[string]bool{
		"  stats socket /run/haproxy/admin.sock mode 600 level admin": false,
		"  stats socket ipv4@127.0.0.1:9999 level admin":              true,
		"stats socket 0.0.0.0:9999":                                   true,
		"  stats socket :9999":                                        true,
	} {
		if got := networkSocket.MatchString(line); got != bad {
			t.Errorf("%q: match = %v, want %v", line, got, bad)
		}
	}
}

// TestRunReportsStoredNamesThatBreakTheRules: rows stored before the naming
// rules (an IP literal, a parent of the public host, an operator-reserved
// name) are each a finding, so `cloud check` exits non-zero; a fine row is not.
func TestRunReportsStoredNamesThatBreakTheRules(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	cfg, err := config.Parse([]string{"--data", dir, "--haproxy", "off", "--public-host", "cloud.provider.net", "--reserved-domains", "corp.example", "--shared-domain", "homes.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{Username: "mallory", Email: "m@example.com", PasswordHash: "x", Role: "user", Active: true}
	h := store.Home{Slot: 0, Slug: "h1", PublicKey: "k", KeyFingerprint: "f"}
	if err := db.Create(&u).Error; err != nil {
		t.Fatal(err)
	}
	h.UserID = u.ID
	if err := db.Create(&h).Error; err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"1.2.3.4", "provider.net", "example.com", "corp.example"} {
		if err := db.Create(&store.BaseDomain{HomeID: h.ID, Domain: d}).Error; err != nil {
			t.Fatal(err)
		}
	}
	// Under the shared domain: the home's own name is fine, another home's is not.
	for i, host := range []string{"cloud.provider.net", "app.example.com", "www.corp.example", "h1.homes.example.net", "web-h2.homes.example.net"} {
		if err := db.Create(&store.Mapping{HomeID: h.ID, Scheme: "https", Host: &host, TunnelPort: 20000 + i}).Error; err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	os.WriteFile(cfg.HostKeyPath(), []byte("x"), 0o600)

	var got []string
	for _, f := range Run(ctx, cfg) {
		if !strings.Contains(f.What, " of home ") {
			continue // other checks' findings
		}
		got = append(got, f.What)
		if !strings.Contains(f.Fix, "h1") {
			t.Errorf("fix %q does not name the home", f.Fix)
		}
	}
	want := []string{
		"base domain 1.2.3.4 of home h1: 1.2.3.4 is an IP address",
		"base domain corp.example of home h1: corp.example is reserved: it is reserved by this cloud's operator",
		"base domain provider.net of home h1: provider.net is reserved: cloud.provider.net, this cloud's public host, is under it",
		"https mapping cloud.provider.net of home h1: cloud.provider.net is reserved: it is this cloud's public host",
		"https mapping web-h2.homes.example.net of home h1: web-h2.homes.example.net is a name of home h2",
		"https mapping www.corp.example of home h1: www.corp.example is reserved: it is under corp.example",
	}
	if len(got) != len(want) {
		t.Fatalf("findings:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("finding %d = %q, want it to start with %q", i, got[i], want[i])
		}
	}
}

// TestRunFindsAMissingRawMap: a data directory from before the raw map
// (proxy_protocol off) lacks raw.map, which the HAProxy config loads;
// `cloud check` says so, and nothing once the map files are all written.
func TestRunFindsAMissingRawMap(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	cfg, err := config.Parse([]string{"--data", dir, "--haproxy", "external", "--haproxy-socket", filepath.Join(dir, "admin.sock"), "--api-addr", "127.0.0.1:8000"})
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(cfg.HAProxyMapDir(), 0o750)
	for _, m := range []haproxy.Map{haproxy.MapHTTPS, haproxy.MapHTTP, haproxy.MapTCP} {
		os.WriteFile(haproxy.MapPath(cfg.HAProxyMapDir(), m), nil, 0o640)
	}
	mapFindings := func() []string {
		var out []string
		for _, f := range Run(context.Background(), cfg) {
			if strings.HasPrefix(f.What, "map file") {
				out = append(out, f.What)
			}
		}
		return out
	}
	if got := mapFindings(); len(got) != 1 || !strings.Contains(got[0], "raw.map") {
		t.Errorf("findings about map files = %q, want one about raw.map", got)
	}
	if err := haproxy.WriteMaps(cfg.HAProxyMapDir(), nil); err != nil {
		t.Fatal(err)
	}
	if got := mapFindings(); len(got) != 0 {
		t.Errorf("findings with every map file written: %q", got)
	}
}
