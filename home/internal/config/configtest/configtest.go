// Package configtest makes valid home profiles for tests that need one
// without a cloud (a config.yaml that loads, no key).
package configtest

import (
	"os"
	"path/filepath"
	"testing"

	"homeport.dev/home/internal/config"
)

// YAML is a valid config.yaml; extra is appended (a forwards: list, say).
func YAML(extra string) string {
	return `# my home
version: 1
name: test
cloud:
  url: http://127.0.0.1:8000
  home: abcdefgh
  ssh:
    host: 127.0.0.1
    port: 8022
    user: abcdefgh
    host_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvGW3Ju0VYnT6o4xBDpVZb5hCuoE4oSy6QOOy0Jy5Yo
key: id_ed25519
certs_dir: certs
console:
  listen: 127.0.0.1:8001
features:
  lan_forwarding: false
` + extra
}

// Profile writes YAML(extra) into a new directory and loads it.
func Profile(t testing.TB, extra string) *config.Profile {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(YAML(extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
