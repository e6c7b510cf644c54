package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"homeport.dev/home/internal/keys"
)

// writeKey gives the profile in dir its key pair.
func writeKey(t *testing.T, dir string) {
	t.Helper()
	if _, err := keys.Generate(filepath.Join(dir, "id_ed25519"), "test", false); err != nil {
		t.Fatal(err)
	}
}

// cloud.ca_file is resolved against the profile, needs an https cloud, and
// a client is not made from a file without a certificate.
func TestCloudCAFile(t *testing.T) {
	https := strings.Replace(goodYAML, "url: http://127.0.0.1:8000", "url: https://cloud.example.com", 1)
	withCA := strings.Replace(https, "  home: abcdefgh\n", "  home: abcdefgh\n  ca_file: cloud-ca.pem\n", 1)
	dir := write(t, withCA, 0o600)
	writeKey(t, dir)
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.CloudCAPath() != filepath.Join(dir, "cloud-ca.pem") {
		t.Errorf("ca path %s", p.CloudCAPath())
	}
	if _, err := p.CloudClient(); err == nil || !strings.Contains(err.Error(), "cloud.ca_file") {
		t.Errorf("a missing CA file: %v", err)
	}
	os.WriteFile(p.CloudCAPath(), []byte("not a certificate"), 0o600)
	if _, err := p.CloudClient(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a CA file without a certificate: %v", err)
	}
	plain := strings.Replace(withCA, "url: https://cloud.example.com", "url: http://cloud.example.com", 1)
	if _, err := Load(write(t, plain, 0o600)); err == nil || !strings.Contains(err.Error(), "cloud.ca_file") {
		t.Errorf("ca_file with an http cloud: %v", err)
	}
	dir2 := write(t, https, 0o600)
	writeKey(t, dir2)
	p2, err := Load(dir2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.CloudClient(); err != nil || p2.CloudCAPath() != "" {
		t.Errorf("no ca_file: %v %q", err, p2.CloudCAPath())
	}
}
