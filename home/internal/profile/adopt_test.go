package profile_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/profile"
	"homeport.dev/proto"
)

// otherKey writes a fresh ed25519 private key that is no home's.
func otherKey(t *testing.T) string {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func homesOf(t *testing.T, c *hometest.Cloud, u *hometest.User) []proto.Home {
	t.Helper()
	var hs []proto.Home
	c.Do(t, u.Token, "GET", "/api/v1/homes", nil, &hs)
	return hs
}

// signedHome reads the profile's home through its own signed client: the
// profile works without any account token.
func signedHome(t *testing.T, p *config.Profile) proto.Home {
	t.Helper()
	client, err := p.CloudClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := client.Home(ctx, p.Cloud.Home)
	if err != nil {
		t.Fatalf("the profile's own signed GET of its home: %v", err)
	}
	return h
}

func absent(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused command left %s behind (%v)", dir, err)
	}
}

// TestRegisterAdoptsAHomeClaimedElsewhere: a home claimed in the web UI (or
// the API) with the user's key is adopted by `home register --home SLUG
// --private-key K`, or without --home when K's public key is that home's,
// instead of claiming a second one; a key that is not the home's is
// refused and nothing is written.
func TestRegisterAdoptsAHomeClaimedElsewhere(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	u := c.CreateUser(t, "alice")
	h := c.ClaimHome(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	wrong := filepath.Join(t.TempDir(), "wrong")
	_, _, err := profile.Register(ctx, profile.RegisterOptions{Cloud: c.APIURL, Token: u.Token, Home: h.Slug, PrivateKey: otherKey(t), Output: wrong})
	if err == nil || !strings.Contains(err.Error(), "this key is not "+h.Slug+"'s; the web UI shows its key") {
		t.Fatalf("adopting with a key that is not the home's: %v", err)
	}
	absent(t, wrong)
	if n := len(homesOf(t, c, u)); n != 1 {
		t.Fatalf("a refused adoption changed the user's homes: %d, want 1", n)
	}

	for name, o := range map[string]profile.RegisterOptions{
		"with --home":         {Home: h.Slug},
		"found by public key": {},
	} {
		o.Cloud, o.Token, o.PrivateKey, o.Output = c.APIURL, u.Token, h.KeyPath, filepath.Join(t.TempDir(), "p")
		p, got, err := profile.Register(ctx, o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Slug != h.Slug || p.Cloud.Home != h.Slug {
			t.Errorf("%s: profile for %s, want the existing home %s", name, p.Cloud.Home, h.Slug)
		}
		if hs := homesOf(t, c, u); len(hs) != 1 || hs[0].Slug != h.Slug {
			t.Errorf("%s: the user's homes are %v, want only %s (adopted, not claimed)", name, hs, h.Slug)
		}
		loaded, err := config.Load(o.Output)
		if err != nil {
			t.Fatal(err)
		}
		if loaded.Cloud.SSH.HostKey != h.SSH.HostKey {
			t.Errorf("%s: pinned host key %q, want the API's %q", name, loaded.Cloud.SSH.HostKey, h.SSH.HostKey)
		}
		if b, _ := os.ReadFile(loaded.ConfigPath()); strings.Contains(string(b), u.Token) || strings.Contains(string(b), "token") {
			t.Errorf("%s: the profile stores a token:\n%s", name, b)
		}
		if signedHome(t, loaded).Slug != h.Slug {
			t.Errorf("%s: the signed client reads another home", name)
		}
	}

	// At the quota, a new claim is refused with the way to adopt instead.
	c.ClaimHome(t, u)
	full := filepath.Join(t.TempDir(), "full")
	if _, _, err := profile.Register(ctx, profile.RegisterOptions{Cloud: c.APIURL, Token: u.Token, Output: full}); err == nil || !strings.Contains(err.Error(), "--home SLUG --private-key") {
		t.Errorf("claiming over the quota: %v; want the way to adopt a home instead", err)
	}
	absent(t, full)

	// --home of a home that is not the user's: refused as unknown.
	bob := c.CreateUser(t, "bob")
	none := filepath.Join(t.TempDir(), "bob")
	if _, _, err := profile.Register(ctx, profile.RegisterOptions{Cloud: c.APIURL, Token: bob.Token, Home: h.Slug, PrivateKey: h.KeyPath, Output: none}); err == nil || !strings.Contains(err.Error(), "you have no home by that name") {
		t.Fatalf("bob adopting alice's home: %v", err)
	}
	absent(t, none)
	if len(homesOf(t, c, bob)) != 0 {
		t.Error("a refused adoption claimed a home for bob")
	}
}

// TestImportClientConfig: `home import FILE --private-key K` makes a
// working profile from the web UI's client config and the home's key; a key
// that is not the home's, or a file whose host key was altered, is refused
// and nothing is written.
func TestImportClientConfig(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	u := c.CreateUser(t, "alice")
	h := c.ClaimHome(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	good := c.ClientConfigFile(t, h, nil)

	for name, tc := range map[string]struct {
		file, key, want string
	}{
		"wrong key": {good, otherKey(t), "this key is not " + h.Slug + "'s; the web UI shows its key"},
		"tampered host key": {c.ClientConfigFile(t, h, func(cc *proto.ClientConfig) {
			cc.SSH.HostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvGW3Ju0VYnT6o4xBDpVZb5hCuoE4oSy6QOOy0Jy5Yo"
		}), h.KeyPath, "is not the one the cloud's API gives"},
		"wrong key, no public key in the file": {c.ClientConfigFile(t, h, func(cc *proto.ClientConfig) { cc.PublicKey = "" }), otherKey(t), "does not accept this key"},
		"another kind":                         {c.ClientConfigFile(t, h, func(cc *proto.ClientConfig) { cc.Kind = "kubeconfig" }), h.KeyPath, "not a homeport-client-config"},
	} {
		out := filepath.Join(t.TempDir(), "p")
		_, _, err := profile.Import(ctx, profile.ImportOptions{File: tc.file, PrivateKey: tc.key, Output: out})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
		absent(t, out)
	}

	out := filepath.Join(t.TempDir(), "p")
	p, got, err := profile.Import(ctx, profile.ImportOptions{File: good, PrivateKey: h.KeyPath, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	if got.Slug != h.Slug || p.Cloud.Home != h.Slug || p.Cloud.URL != c.APIURL || p.Cloud.SSH.HostKey != h.SSH.HostKey {
		t.Errorf("imported profile %+v, want home %s with the file's host key", p.Cloud, h.Slug)
	}
	loaded, err := config.Load(out)
	if err != nil {
		t.Fatalf("the imported profile does not load: %v", err)
	}
	if signedHome(t, loaded).Slug != h.Slug {
		t.Error("the imported profile's signed client reads another home")
	}
	// An older file (cloud_url, slug, ssh only) imports too.
	old := c.ClientConfigFile(t, h, func(cc *proto.ClientConfig) { cc.Kind, cc.PublicKey = "", "" })
	if _, _, err := profile.Import(ctx, profile.ImportOptions{File: old, PrivateKey: h.KeyPath, Output: filepath.Join(t.TempDir(), "old")}); err != nil {
		t.Errorf("an older client config: %v", err)
	}
}

// TestImportWithAnRSAKey: a home whose key is RSA signs its requests with
// rsa-sha2-256, and the real cloud accepts them.
func TestImportWithAnRSAKey(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	u := c.CreateUser(t, "alice")
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(t.TempDir(), "id_rsa")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &hometest.Home{KeyPath: keyPath}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if st := c.Do(t, u.Token, "POST", "/api/v1/homes", proto.ClaimHomeRequest{PublicKey: line}, &h.Home); st != 201 {
		t.Fatalf("claim with an RSA key: %d", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, _, err := profile.Import(ctx, profile.ImportOptions{File: c.ClientConfigFile(t, h, nil), PrivateKey: keyPath, Output: filepath.Join(t.TempDir(), "p")})
	if err != nil {
		t.Fatalf("import with an RSA key: %v", err)
	}
	if signedHome(t, p).Slug != h.Slug {
		t.Error("the RSA-signed GET read another home")
	}
}
