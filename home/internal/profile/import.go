package profile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"

	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/config"
	"homeport.dev/proto"
)

// ImportOptions are `home import`'s inputs.
type ImportOptions struct {
	File       string // the client config the cloud's web UI offers (homeport-<slug>.yaml)
	PrivateKey string // the home's private key
	Name       string // profile name; default from the cloud's host name
	Output     string // profile directory; default BaseDir/Name
	CAFile     string // PEM roots trusted for the cloud's HTTPS; copied into the profile
	// InsecureHTTP allows an http:// cloud URL beyond this machine.
	InsecureHTTP bool
	Progress     func(format string, args ...any)
}

// ReadClientConfig reads and checks a client config file: the current
// kind, or an older file that has only cloud_url, slug and ssh.
func ReadClientConfig(path string) (proto.ClientConfig, error) {
	var cc proto.ClientConfig
	f, err := os.Open(path)
	if err != nil {
		return cc, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return cc, err
	}
	if err := yaml.Unmarshal(b, &cc); err != nil {
		return cc, fmt.Errorf("%s is not a homeport client config: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if cc.Kind != "" && cc.Kind != proto.ClientConfigKind {
		return cc, fmt.Errorf("%s is a %s, not a %s (download it again from the cloud's web UI)", path, proto.Printable(cc.Kind), proto.ClientConfigKind)
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if _, err := cloudapi.ParseURL(cc.CloudURL); err != nil {
		bad("cloud_url", "%v", err)
	}
	if err := proto.ValidateUsername(cc.Slug); err != nil || cc.Slug == "" {
		bad("slug", "%s is not a home slug", proto.Printable(cc.Slug))
	}
	if cc.PublicKey != "" {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cc.PublicKey)); err != nil {
			bad("public_key", "is not an SSH public key (%v)", err)
		}
	}
	if cc.SSH.HostKey != "" {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cc.SSH.HostKey)); err != nil {
			bad("ssh.host_key", "is not an SSH public key (%v)", err)
		}
	}
	if len(errs) > 0 {
		return cc, fmt.Errorf("%s is not a usable client config:\n%w", path, errors.Join(errs...))
	}
	return cc, nil
}

// Import writes a profile for a home claimed elsewhere (the web UI), from
// its client config and its private key. The key must be the home's (the
// file's public_key, when it has one) and the cloud must accept requests
// signed with it now; the SSH host key pinned is the file's, and must equal
// the one the cloud's API gives. Nothing is written on any failure.
func Import(ctx context.Context, o ImportOptions) (*config.Profile, proto.Home, error) {
	say := o.Progress
	if say == nil {
		say = func(string, ...any) {}
	}
	cc, err := ReadClientConfig(o.File)
	if err != nil {
		return nil, proto.Home{}, err
	}
	if o.PrivateKey == "" {
		return nil, proto.Home{}, errors.New("--private-key is required: the home's private key, whose public key the cloud shows for it")
	}
	key, err := readKeyPair(o.PrivateKey, "")
	if err != nil {
		return nil, proto.Home{}, err
	}
	if cc.PublicKey != "" && !key.matches(cc.PublicKey) {
		return nil, proto.Home{}, fmt.Errorf("this key is not %s's; the web UI shows its key (%s; this key is %s)", cc.Slug, keyFingerprint(cc.PublicKey), ssh.FingerprintSHA256(key.signer.PublicKey()))
	}
	client, err := cloudapi.NewSigned(cc.CloudURL, key.signer, cc.Slug)
	if err != nil {
		return nil, proto.Home{}, err
	}
	if client.InClear() && !o.InsecureHTTP {
		return nil, proto.Home{}, fmt.Errorf("cloud_url %s is plain HTTP to another machine: the home's requests would cross the network readable and its pinned host key could not be checked; "+
			"use the cloud's https:// address, or add --insecure-http on a network you trust", client.URL())
	}
	if err := trustCA(client, o.CAFile); err != nil {
		return nil, proto.Home{}, err
	}
	dir, inPlace, err := target(o.Output, o.Name, cc.CloudURL)
	if err != nil {
		return nil, proto.Home{}, err
	}
	say("asking %s for home %s, signed with the key", client.URL(), cc.Slug)
	h, err := client.Home(ctx, cc.Slug)
	if cloudapi.IsStatus(err, 401) || cloudapi.IsStatus(err, 403) || cloudapi.IsStatus(err, 404) {
		return nil, proto.Home{}, fmt.Errorf("the cloud does not accept this key for home %s (released, or its key replaced?): %w", cc.Slug, err)
	}
	if err != nil {
		return nil, proto.Home{}, err
	}
	if h.Slug != cc.Slug || !key.matches(h.PublicKey) {
		return nil, proto.Home{}, fmt.Errorf("this key is not %s's; the web UI shows its key (%s)", cc.Slug, keyFingerprint(h.PublicKey))
	}
	if cc.SSH.HostKey != "" && !sameKey(cc.SSH.HostKey, h.SSH.HostKey) {
		return nil, proto.Home{}, fmt.Errorf("the SSH host key in %s (%s) is not the one the cloud's API gives (%s): the file was altered or comes from another cloud; download it again from the web UI",
			o.File, keyFingerprint(cc.SSH.HostKey), keyFingerprint(h.SSH.HostKey))
	}
	staging, cleanup, err := stage(dir, inPlace)
	if err != nil {
		return nil, proto.Home{}, err
	}
	done := false
	defer func() { cleanup(done) }()
	if _, err := key.install(filepath.Join(staging, "id_ed25519")); err != nil {
		return nil, proto.Home{}, err
	}
	p, err := writeProfile(ctx, staging, dir, cc.CloudURL, o.CAFile, h)
	if err == nil && !inPlace {
		err = os.Rename(staging, dir)
	}
	if err != nil {
		return nil, proto.Home{}, err
	}
	done = true
	p.Dir = dir
	return p, h, nil
}

// sameKey reports whether two authorized_keys lines hold the same key
// (comments aside).
func sameKey(a, b string) bool {
	ka, _, _, _, err1 := ssh.ParseAuthorizedKey([]byte(a))
	kb, _, _, _, err2 := ssh.ParseAuthorizedKey([]byte(b))
	return err1 == nil && err2 == nil && bytes.Equal(ka.Marshal(), kb.Marshal())
}
