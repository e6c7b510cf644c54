package check

import (
	"context"
	"os"
	"strings"
	"testing"

	"homeport.dev/cloud/internal/config"
)

func TestRunFindsLooseModesAndMissingState(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]string{"--data", dir, "--haproxy", "off"})
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
