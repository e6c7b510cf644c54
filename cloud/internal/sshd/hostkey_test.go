package sshd

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHostKeyIsCreatedOnceWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "ssh_host_ed25519_key")
	first, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("host key mode = %o, want 600", st.Mode().Perm())
	}
	again, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if AuthorizedKey(first) != AuthorizedKey(again) {
		t.Errorf("host key changed between starts: %s vs %s", AuthorizedKey(first), AuthorizedKey(again))
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateHostKey(path); err == nil {
		t.Errorf("a world-readable host key was accepted")
	}
}
