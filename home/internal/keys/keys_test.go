package keys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestGenerateWritesAPairAndRefusesToOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profile", "id_ed25519")
	line, err := Generate(path, "home@test", false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "ssh-ed25519 ") || !strings.HasSuffix(line, " home@test") {
		t.Errorf("public key line = %q", line)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	b, _ := os.ReadFile(path)
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(path + ".pub")
	if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))); !strings.HasPrefix(string(pub), got) {
		t.Errorf(".pub %q does not match the private key %q", pub, got)
	}
	if _, err := Generate(path, "", false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("overwrite without force: err = %v", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(b) {
		t.Errorf("a refused keygen changed the key")
	}
	if _, err := Generate(path, "", true); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); string(after) == string(b) {
		t.Errorf("--force did not replace the key")
	}
}
