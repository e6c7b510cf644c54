// Package profile owns where home profiles live, which one a command uses,
// and a profile's life: creating one by claiming a home (`home register`,
// with rollback so a failure never leaves a claimed slot or half a
// profile), by adopting a home already claimed (`home register --home`,
// `home import`), rotating the home's key, and releasing it.
package profile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/keys"
	"homeport.dev/proto"
	"homeport.dev/proto/atomicfile"
)

// EnvConfig selects a profile, like --config.
const EnvConfig = "HOME_CONFIG"

// BaseDir is where profiles are created by default: $HOMEPORT_PROFILES, or
// $XDG_CONFIG_HOME/homeport, or ~/.config/homeport.
func BaseDir() (string, error) {
	if d := os.Getenv("HOMEPORT_PROFILES"); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory (%v); pass --output or set HOMEPORT_PROFILES", err)
	}
	return filepath.Join(d, "homeport"), nil
}

// List returns the profile directories under the base directory.
func List() ([]string, error) {
	base, err := BaseDir()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), releasedInfix) {
			continue // an archive of a released home
		}
		if _, err := os.Stat(filepath.Join(base, e.Name(), config.FileName)); e.IsDir() && err == nil {
			out = append(out, filepath.Join(base, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Resolve picks the profile a command uses: the --config flag, else
// HOME_CONFIG, else the only profile under the base directory.
func Resolve(flag string) (*config.Profile, error) {
	path := flag
	if path == "" {
		path = os.Getenv(EnvConfig)
	}
	if path == "" {
		all, err := List()
		if err != nil {
			return nil, err
		}
		switch len(all) {
		case 0:
			return nil, errors.New("no profile yet: run `home register --cloud URL --token TOKEN` first")
		case 1:
			path = all[0]
		default:
			return nil, fmt.Errorf("several profiles exist (%s); choose one with --config DIR or HOME_CONFIG=DIR", strings.Join(all, ", "))
		}
	}
	return config.Load(path)
}

var unsafeName = regexp.MustCompile(`[^a-z0-9.-]+`)

// DefaultName derives a profile name from the cloud URL's host.
func DefaultName(cloudURL string) string {
	u, err := url.Parse(cloudURL)
	name := "cloud"
	if err == nil && u.Hostname() != "" {
		name = u.Hostname()
	}
	if strings.Contains(name, ":") {
		name = "ipv6-" + name // an IPv6 literal: keep it recognisable once the colons go
	}
	name = strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(name), "-"), "-.")
	if name == "" {
		name = "cloud"
	}
	return name
}

// freeDir returns base/name, or base/name-2, -3 ... when taken.
func freeDir(base, name string) string {
	dir := filepath.Join(base, name)
	for i := 2; exists(dir); i++ {
		dir = filepath.Join(base, fmt.Sprintf("%s-%d", name, i))
	}
	return dir
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// RegisterOptions are `home register`'s inputs.
type RegisterOptions struct {
	Cloud string
	// Token is a user's API token: used for this registration only, never
	// stored in the profile.
	Token string
	// Home adopts this home, already claimed by the token's user (in the
	// web UI or the API), instead of claiming a new one; PrivateKey must
	// be its key.
	Home       string
	Name       string // profile name; default from the cloud's host name
	Output     string // profile directory; default BaseDir/Name
	PrivateKey string // existing key to use; a new ed25519 key otherwise
	PublicKey  string // optional: checked to be PrivateKey's pair
	CAFile     string // PEM roots trusted for the cloud's HTTPS (a private CA); copied into the profile
	// InsecureHTTP allows an http:// cloud URL beyond this machine, which
	// sends the token and the home's requests in clear.
	InsecureHTTP bool
	Progress     func(format string, args ...any)
}

// Register claims a home with the token and writes a new profile; or,
// with Home set or when the user already has a home whose key is
// PrivateKey's, adopts that home. Nothing is left behind on failure: the
// profile is built in a staging directory and moved into place last, and a
// new claim is released if a later step fails (an adopted home is kept).
func Register(ctx context.Context, o RegisterOptions) (*config.Profile, proto.Home, error) {
	say := o.Progress
	if say == nil {
		say = func(string, ...any) {}
	}
	client, err := cloudapi.NewWithToken(o.Cloud, o.Token)
	if err != nil {
		return nil, proto.Home{}, err
	}
	if client.InClear() && !o.InsecureHTTP {
		return nil, proto.Home{}, fmt.Errorf("--cloud %s is plain HTTP to another machine: your API token and the home's requests would cross the network readable; "+
			"use the cloud's https:// address (it serves its own name over HTTPS), or add --insecure-http on a network you trust", client.URL())
	}
	if err := trustCA(client, o.CAFile); err != nil {
		return nil, proto.Home{}, err
	}
	if o.PublicKey != "" && o.PrivateKey == "" {
		return nil, proto.Home{}, errors.New("--public-key needs --private-key (the public key is derived from it; a new key is generated when neither is given)")
	}
	if o.Home != "" && o.PrivateKey == "" {
		return nil, proto.Home{}, fmt.Errorf("--home %s adopts a home you already claimed: give its --private-key", proto.Printable(o.Home))
	}
	var key *keyPair
	if o.PrivateKey != "" {
		if key, err = readKeyPair(o.PrivateKey, o.PublicKey); err != nil {
			return nil, proto.Home{}, err
		}
	}
	dir, inPlace, err := target(o.Output, o.Name, o.Cloud)
	if err != nil {
		return nil, proto.Home{}, err
	}
	say("checking the token with %s", client.URL())
	me, err := client.Me(ctx)
	if err != nil {
		if cloudapi.IsStatus(err, 401) {
			return nil, proto.Home{}, fmt.Errorf("the cloud rejected the token (wrong, rotated or revoked?): %w", err)
		}
		return nil, proto.Home{}, err
	}
	var home proto.Home
	adopted := false
	if key != nil {
		if home, adopted, err = findAdoptable(ctx, client, o.Home, key); err != nil {
			return nil, proto.Home{}, err
		}
	}
	staging, cleanup, err := stage(dir, inPlace)
	if err != nil {
		return nil, proto.Home{}, err
	}
	done := false
	defer func() { cleanup(done) }()
	var pub string
	if key != nil {
		pub, err = key.install(filepath.Join(staging, "id_ed25519"))
	} else {
		host, _ := os.Hostname()
		pub, err = keys.Generate(filepath.Join(staging, "id_ed25519"), "homeport@"+host, false)
	}
	if err != nil {
		return nil, proto.Home{}, err
	}
	if adopted {
		say("adopting home %s of %s (its key is the one given)", home.Slug, me.Username)
	} else {
		say("claiming a home for %s", me.Username)
		if home, err = client.ClaimHome(ctx, pub); err != nil {
			if cloudapi.IsStatus(err, 409) {
				err = fmt.Errorf("%w\nto use a home you already have on this machine instead: home register --cloud %s --token ... --home SLUG --private-key ITS-KEY (or home import with its client config from the web UI)", err, client.URL())
			}
			return nil, proto.Home{}, err
		}
	}
	p, err := writeProfile(ctx, staging, dir, o.Cloud, o.CAFile, home)
	if err == nil && !inPlace {
		err = os.Rename(staging, dir)
	}
	if err != nil && adopted {
		return nil, home, fmt.Errorf("%w (home %s stays claimed, as it was)", err, home.Slug)
	}
	if err != nil {
		// Roll the claim back with a fresh context: the caller's may be done.
		rctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if rerr := client.ReleaseHome(rctx, home.Slug); rerr != nil {
			return nil, home, fmt.Errorf("%w; releasing the claimed home %s also failed (%v): release it in the cloud's web UI", err, home.Slug, rerr)
		}
		return nil, home, fmt.Errorf("%w (the claimed home %s was released again)", err, home.Slug)
	}
	done = true
	p.Dir = dir
	return p, home, nil
}

// findAdoptable finds the home to adopt: slug when given (it must exist,
// be the user's and have key's public key), else the user's home that has
// key's public key, if any (adopted is false: claim a new one).
func findAdoptable(ctx context.Context, client *cloudapi.Client, slug string, key *keyPair) (home proto.Home, adopted bool, err error) {
	if slug != "" {
		h, err := client.Home(ctx, slug)
		if cloudapi.IsStatus(err, 404) {
			return proto.Home{}, false, fmt.Errorf("--home %s: you have no home by that name on this cloud (the web UI lists yours)", proto.Printable(slug))
		}
		if err != nil {
			return proto.Home{}, false, err
		}
		if !key.matches(h.PublicKey) {
			return proto.Home{}, false, fmt.Errorf("this key is not %s's; the web UI shows its key (%s)", h.Slug, keyFingerprint(h.PublicKey))
		}
		return h, true, nil
	}
	homes, err := client.Homes(ctx)
	if err != nil {
		return proto.Home{}, false, err
	}
	for _, h := range homes {
		if key.matches(h.PublicKey) {
			return h, true, nil
		}
	}
	return proto.Home{}, false, nil
}

func trustCA(client *cloudapi.Client, caFile string) error {
	if caFile == "" {
		return nil
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("--ca-file: %w", err)
	}
	if err := client.TrustCA(ca); err != nil {
		return fmt.Errorf("--ca-file %s: %w", caFile, err)
	}
	return nil
}

// target is the profile directory to create. inPlace is true when it is an
// existing empty directory (--output naming a mounted volume, say): the
// profile is written into it, since a mount point can be neither replaced
// nor removed.
func target(output, name, cloud string) (dir string, inPlace bool, err error) {
	if output != "" {
		dir, err := filepath.Abs(output)
		if err != nil {
			return "", false, err
		}
		if st, err := os.Stat(dir); err == nil {
			if !st.IsDir() {
				return "", false, fmt.Errorf("%s exists and is not a directory; choose another --output", dir)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				return "", false, err
			}
			if len(entries) > 0 {
				return "", false, fmt.Errorf("%s already exists and is not empty; choose another --output (an existing profile is never overwritten)", dir)
			}
			return dir, true, nil
		}
		return dir, false, os.MkdirAll(filepath.Dir(dir), 0o700)
	}
	base, err := BaseDir()
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", false, err
	}
	explicit := name != ""
	if !explicit {
		name = DefaultName(cloud)
	} else if name != filepath.Base(name) || strings.HasPrefix(name, ".") || strings.Contains(name, releasedInfix) {
		return "", false, fmt.Errorf("--name %s must be a plain name", proto.Printable(name))
	}
	if explicit && exists(filepath.Join(base, name)) {
		return "", false, fmt.Errorf("a profile named %s already exists in %s; choose another --name", name, base)
	}
	return freeDir(base, name), false, nil
}

// stage returns the directory the profile is written to, owner-only, and
// the cleanup to run at the end: a staging directory beside dir is removed
// (it was renamed into place on success); an existing empty dir is emptied
// again on failure, and kept.
func stage(dir string, inPlace bool) (string, func(ok bool), error) {
	if inPlace {
		if err := os.Chmod(dir, 0o700); err != nil {
			return "", nil, fmt.Errorf("%s: %w (the profile directory must belong to the user running home)", dir, err)
		}
		return dir, func(ok bool) {
			if ok {
				return
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}, nil
	}
	staging, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".new-*")
	if err != nil {
		return "", nil, err
	}
	cleanup := func(bool) { os.RemoveAll(staging) }
	if err := os.Chmod(staging, 0o700); err != nil {
		cleanup(false)
		return "", nil, err
	}
	return staging, cleanup, nil
}

// keyPair is an existing private key given to register or import, with
// its public key line.
type keyPair struct {
	path   string
	priv   []byte
	signer ssh.Signer
	line   string // authorized_keys line, with the comment of the .pub file if given
}

// readKeyPair reads the private key at privPath; the public key is derived
// from it, and checked against pubPath when one is given.
func readKeyPair(privPath, pubPath string) (*keyPair, error) {
	priv, err := os.ReadFile(privPath)
	if err != nil {
		return nil, fmt.Errorf("--private-key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("--private-key %s: %v (passphrase-protected keys are not supported)", privPath, err)
	}
	k := &keyPair{path: privPath, priv: priv, signer: signer,
		line: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))}
	if pubPath == "" {
		return k, nil
	}
	pubLine, err := os.ReadFile(pubPath)
	if err != nil {
		return nil, fmt.Errorf("--public-key: %w", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		return nil, fmt.Errorf("--public-key %s: %v", pubPath, err)
	}
	if !bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal()) {
		return nil, errors.New("--public-key and --private-key are not a pair")
	}
	k.line = strings.TrimSpace(string(pubLine))
	return k, nil
}

// matches reports whether line (an authorized_keys line, as the cloud
// shows a home's key) is this pair's public key.
func (k *keyPair) matches(line string) bool {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	return err == nil && bytes.Equal(pub.Marshal(), k.signer.PublicKey().Marshal())
}

// install writes the pair into the profile at dst (private 0600) and
// dst.pub, and returns the public key line.
func (k *keyPair) install(dst string) (string, error) {
	if err := atomicfile.Write(dst, k.priv, 0o600); err != nil {
		return "", err
	}
	return k.line, atomicfile.Write(dst+".pub", []byte(k.line+"\n"), 0o644)
}

// keyFingerprint is the SHA256 fingerprint of an authorized_keys line, as
// ssh-keygen -l and the web UI print it.
func keyFingerprint(line string) string {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return "unknown key"
	}
	return ssh.FingerprintSHA256(pub)
}

func writeProfile(ctx context.Context, staging, final, cloudURL, caFile string, h proto.Home) (*config.Profile, error) {
	c := config.Config{
		Name: filepath.Base(final),
		Cloud: config.Cloud{URL: strings.TrimRight(cloudURL, "/"), Home: h.Slug,
			SSH: config.SSH{Host: h.SSH.Host, Port: h.SSH.Port, User: h.SSH.User, HostKey: h.SSH.HostKey}},
	}
	c.Defaults()
	c.Console.Listen = freeConsoleAddr(filepath.Dir(final))
	if caFile != "" {
		// A copy inside the profile: later API calls verify the same chain,
		// and the profile can move.
		ca, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		c.Cloud.CAFile = "cloud-ca.pem"
		if err := os.WriteFile(filepath.Join(staging, c.Cloud.CAFile), ca, 0o600); err != nil {
			return nil, err
		}
	}
	p := &config.Profile{Dir: staging, Config: c}
	if err := p.Save(); err != nil {
		return nil, fmt.Errorf("the cloud's answer does not make a valid profile: %w", err)
	}
	if err := os.MkdirAll(p.CertsPath(), 0o700); err != nil {
		return nil, err
	}
	return p, nil
}

// freeConsoleAddr gives a new profile the first console address from
// 127.0.0.1:8001 up that no profile beside it (in base) uses, so several
// profiles run side by side without choosing ports by hand.
func freeConsoleAddr(base string) string {
	used := map[string]bool{}
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if p, err := config.Load(filepath.Join(base, e.Name())); err == nil {
			used[p.Console.Listen] = true
		}
	}
	for port := 8001; ; port++ {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if !used[addr] {
			return addr
		}
	}
}
