package homes

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func authorized(t *testing.T, pub any) string {
	t.Helper()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func TestParseKey(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa3072, _ := rsa.GenerateKey(rand.Reader, 3072)
	ed := authorized(t, edPub)
	tests := []struct {
		name string
		line string
		ok   bool
	}{
		{"ed25519", ed, true},
		{"ed25519 with comment", ed + " me@laptop", true},
		{"surrounding space", "  " + ed + "\n", true},
		{"ecdsa p256", authorized(t, &ec.PublicKey), true},
		{"rsa 3072", authorized(t, &rsa3072.PublicKey), true},
		{"rsa 2048", authorized(t, &rsa2048.PublicKey), false},
		{"empty", "", false},
		{"options", `no-pty,command="x" ` + ed, false},
		{"two lines", ed + "\n" + ed, false},
		{"truncated", ed[:40], false},
		{"not a key", "hello world", false},
	}
	for _, tt := range tests {
		_, canonical, err := ParseKey(tt.line)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if tt.name == "ed25519 with comment" && canonical != ed {
			t.Errorf("canonical form %q, want the key without its comment %q", canonical, ed)
		}
	}
}
