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
	if err := writeAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	if err := writeAtomic(path+".pub", []byte(line+"\n"), 0o644); err != nil {
		os.Remove(path)
		return "", err
	}
	return line, nil
}

// writeAtomic writes data to a temporary file beside path and renames it
// into place, so a reader sees the old file or the whole new one.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
