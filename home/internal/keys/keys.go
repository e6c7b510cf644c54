// Package keys owns the home's SSH identity: generating the ed25519 key pair
// that identifies a home to its cloud, and writing it safely.
package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"homeport.dev/proto/atomicfile"
)

// Generate creates an ed25519 key pair at path (private, 0600) and path.pub
// (public, 0644) and returns the public key line. It refuses to replace an
// existing key unless force is set, and never leaves half a pair behind.
func Generate(path, comment string, force bool) (string, error) {
	if !force {
		for _, p := range []string{path, path + ".pub"} {
			if _, err := os.Stat(p); err == nil {
				return "", fmt.Errorf("%s already exists; pass --force to replace it (the home it identifies will need the new public key)", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return "", err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	if comment != "" {
		line += " " + comment
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := atomicfile.Write(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	if err := atomicfile.Write(path+".pub", []byte(line+"\n"), 0o644); err != nil {
		os.Remove(path)
		return "", err
	}
	return line, nil
}
