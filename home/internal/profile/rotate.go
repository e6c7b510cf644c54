package profile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"

	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/keys"
	"homeport.dev/proto"
	"homeport.dev/proto/atomicfile"
)

// PendingKeyPath is where a key rotation keeps the new key until the cloud
// has it: beside the key, as KEY.new (0600).
func PendingKeyPath(p *config.Profile) string { return p.KeyPath() + ".new" }

// RotateKey replaces the home's key: a new ed25519 key is written beside
// the old one, the cloud is told (PATCH signed with the old key), and only
// then does the new key replace the old file (a rename). Interrupted after
// the cloud took it, the next RotateKey or agent start finds the new key
// and finishes (RecoverKey). It returns the new public key line.
func RotateKey(ctx context.Context, p *config.Profile) (string, error) {
	if _, err := RecoverKey(ctx, p); err != nil {
		return "", err
	}
	client, err := p.CloudClient()
	if err != nil {
		return "", err
	}
	pending := PendingKeyPath(p)
	host, _ := os.Hostname()
	line, err := keys.Generate(pending, "homeport@"+host, false)
	if err != nil {
		return "", err
	}
	if _, err := client.PatchHome(ctx, p.Cloud.Home, proto.PatchHomeRequest{PublicKey: &line}); err != nil {
		var refused *cloudapi.Error
		if errors.As(err, &refused) && refused.Status < 500 {
			// The cloud said no: it keeps the old key.
			removePending(pending)
			return "", err
		}
		return "", fmt.Errorf("%w\nthe cloud may or may not have the new key: run `home rotate-key` again (it finds out, and finishes)", err)
	}
	if err := promote(p); err != nil {
		return "", err
	}
	return line, nil
}

// RecoverKey finishes a rotation that was interrupted after the cloud took
// the new key: when a pending key exists and the cloud accepts it (a
// signed GET with it works), it replaces the old key, and RecoverKey
// returns true. When the cloud still has the old key, the pending one is
// removed. When neither can be told, it is kept and the error says so.
func RecoverKey(ctx context.Context, p *config.Profile) (promoted bool, err error) {
	pending := PendingKeyPath(p)
	b, err := os.ReadFile(pending)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return false, fmt.Errorf("an interrupted key rotation left %s, which is not a key (%v): remove it", pending, err)
	}
	if cloudHasKey(ctx, p, signer) {
		return true, promote(p)
	}
	if old, err := p.Signer(); err == nil && cloudHasKey(ctx, p, old) {
		removePending(pending)
		return false, nil
	}
	return false, fmt.Errorf("an interrupted key rotation left %s, and the cloud accepts neither it nor %s right now (unreachable?): both are kept; run `home rotate-key` again later", pending, p.KeyPath())
}

// cloudHasKey reports whether the cloud accepts requests of the home
// signed with signer and holds its public key.
func cloudHasKey(ctx context.Context, p *config.Profile, signer ssh.Signer) bool {
	client, err := p.CloudClientAs(signer)
	if err != nil {
		return false
	}
	h, err := client.Home(ctx, p.Cloud.Home)
	if err != nil {
		return false
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.PublicKey))
	return err == nil && bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal())
}

// promote moves the pending key into place: the private key by one rename
// (the old key is gone at that instant, never before), then its public key.
func promote(p *config.Profile) error {
	pending, key := PendingKeyPath(p), p.KeyPath()
	b, err := os.ReadFile(pending)
	if err != nil {
		return err
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return err
	}
	if err := os.Rename(pending, key); err != nil {
		return fmt.Errorf("the cloud has the new key, but %s could not replace %s (%v): rename it by hand", pending, key, err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if pub, err := os.ReadFile(pending + ".pub"); err == nil {
		line = strings.TrimSpace(string(pub)) // keeps the comment
	}
	if err := atomicfile.Write(key+".pub", []byte(line+"\n"), 0o644); err != nil {
		return err
	}
	os.Remove(pending + ".pub")
	return nil
}

func removePending(pending string) {
	os.Remove(pending)
	os.Remove(pending + ".pub")
}
