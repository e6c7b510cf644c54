package main

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/store"
)

// TestStoredNamesThatBreakTheRulesAreReported: names stored before the
// naming rules existed stay, but `cloud serve` warns about each at start and
// `cloud check` reports each and exits non-zero (real binary, real database).
func TestStoredNamesThatBreakTheRulesAreReported(t *testing.T) {
	bin := cloudtest.Binary(t)
	dir := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "cloud.db"))
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{Username: "mallory", Email: "m@example.com", PasswordHash: "x", Role: "user", Active: true}
	if err := db.Create(&u).Error; err != nil {
		t.Fatal(err)
	}
	h := store.Home{Slug: "mhome001", UserID: u.ID, PublicKey: "k", KeyFingerprint: "f"}
	if err := db.Create(&h).Error; err != nil {
		t.Fatal(err)
	}
	host := "cloud.provider.net"
	for _, row := range []any{
		&store.BaseDomain{HomeID: h.ID, Domain: "127.0.0.1"},
		&store.BaseDomain{HomeID: h.ID, Domain: "provider.net"},
		&store.Mapping{HomeID: h.ID, Scheme: "https", Host: &host, TunnelPort: 20000},
	} {
		if err := db.Create(row).Error; err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	flags := []string{"--data", dir, "--public-host", "cloud.provider.net", "--haproxy", "off", "--shape-dev", "off",
		"--api-addr", "127.0.0.1:0", "--ssh-addr", "127.0.0.1:0"}

	serve := exec.Command(bin, append([]string{"serve"}, flags...)...)
	var stderr bytes.Buffer
	serve.Stderr = &stderr
	stdout, _ := serve.StdoutPipe()
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.HasPrefix(line, "cloud ready")
	}()
	select {
	case ok := <-ready:
		if !ok {
			serve.Process.Kill()
			serve.Wait()
			t.Fatalf("cloud serve did not start:\n%s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		serve.Process.Kill()
		serve.Wait()
		t.Fatalf("cloud serve not ready after 30 s:\n%s", stderr.String())
	}
	serve.Process.Signal(syscall.SIGTERM)
	serve.Wait()
	for _, name := range []string{"name=127.0.0.1", "name=provider.net", "name=cloud.provider.net"} {
		if !strings.Contains(stderr.String(), "level=WARN msg=\"a stored name breaks the naming rules") || !strings.Contains(stderr.String(), name) {
			t.Errorf("cloud serve did not warn about %s:\n%s", name, stderr.String())
		}
	}

	out, err := exec.Command(bin, append([]string{"check"}, flags...)...).CombinedOutput()
	if err == nil {
		t.Errorf("cloud check exited 0 with violating names:\n%s", out)
	}
	for _, want := range []string{
		"PROBLEM base domain 127.0.0.1 of home mhome001: 127.0.0.1 is an IP address",
		"PROBLEM base domain provider.net of home mhome001: provider.net is reserved: cloud.provider.net, this cloud's public host, is under it",
		"PROBLEM https mapping cloud.provider.net of home mhome001: cloud.provider.net is reserved: it is this cloud's public host",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("cloud check does not report %q:\n%s", want, out)
		}
	}
}
