// Package config owns a home profile's config.yaml: its typed form, loading
// with validation that names the field and says what to do, relative paths
// resolved against the profile directory, and atomic saving (mode 0600).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"

	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/proto"
	"homeport.dev/proto/atomicfile"
)

// FileName is the config file inside a profile directory.
const FileName = "config.yaml"

// Version is the config format this binary writes.
const Version = 1

// Config is a home profile's configuration. Paths are as written in the
// file; use the Profile methods for resolved paths.
type Config struct {
	Version int    `yaml:"version"`
	Name    string `yaml:"name"`
	Cloud   Cloud  `yaml:"cloud"`
	Key     string `yaml:"key"`
	// LegacyDatabase is the entries database profiles kept before
	// forwards: (database: home.db). Load converts it; nothing uses it.
	LegacyDatabase string   `yaml:"database,omitempty"`
	CertsDir       string   `yaml:"certs_dir"`
	Console        Console  `yaml:"console"`
	ACME           ACME     `yaml:"acme"`
	Features       Features `yaml:"features"`
	// Forwards is what the home exposes, as written in the file at load
	// (unchecked here: a bad forward must not stop `home status`). Read
	// the current list, validated, with ReadForwards (hand edits are picked
	// up while the home runs); change it with EditForwards.
	Forwards yaml.Node `yaml:"forwards,omitempty"`
}

// ACME CA shorthands accepted by acme.ca_url.
const (
	LetsEncrypt        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// ACME is how the home obtains its certificates.
type ACME struct {
	// CAURL is the CA's ACME directory; empty or "letsencrypt" is Let's
	// Encrypt production, "letsencrypt-staging" its staging CA.
	CAURL string `yaml:"ca_url,omitempty"`
	// Email is the account's contact for expiry and incident notices.
	Email string `yaml:"email,omitempty"`
	// TrustedRoots is a PEM file of root certificates trusted for the CA's
	// own HTTPS, instead of the system's (a private CA, Pebble in tests).
	TrustedRoots string `yaml:"trusted_roots,omitempty"`
	// DeployPath, if set, receives DEPLOY_PATH/<domain>/fullchain.pem and
	// privkey.pem after every issuance (each written atomically).
	DeployPath string `yaml:"deploy_path,omitempty"`
	// DisableTLSALPN and DisableHTTP01 turn a challenge type off (both
	// on by default; TLS-ALPN-01 is tried first).
	DisableTLSALPN bool `yaml:"disable_tls_alpn,omitempty"`
	DisableHTTP01  bool `yaml:"disable_http01,omitempty"`
}

// Directory is the CA's ACME directory URL, shorthands resolved.
func (a ACME) Directory() string {
	switch a.CAURL {
	case "", "letsencrypt":
		return LetsEncrypt
	case "letsencrypt-staging":
		return LetsEncryptStaging
	}
	return a.CAURL
}

// Cloud is where the home's cloud is and which home this is. The home
// proves who it is with its own key (key:), which signs its API requests
// and its SSH login: the profile holds no account credential.
type Cloud struct {
	URL string `yaml:"url"`
	// LegacyToken is the account API token profiles stored before homes
	// signed their requests. Load removes it from the file; nothing uses it.
	LegacyToken string `yaml:"token,omitempty"`
	Home        string `yaml:"home"`
	SSH         SSH    `yaml:"ssh"`
	// CAFile is a PEM file of the roots trusted for the cloud's HTTPS
	// instead of the system's (a private CA); `home register --ca-file`
	// copies it into the profile.
	CAFile string `yaml:"ca_file,omitempty"`
}

// SSH is the cloud's SSH endpoint and its pinned host key.
type SSH struct {
	Host    string `yaml:"host"`
	Port    int    `yaml:"port"`
	User    string `yaml:"user"`
	HostKey string `yaml:"host_key"`
}

// Console is the local dashboard.
type Console struct {
	Listen       string `yaml:"listen"`
	PasswordHash string `yaml:"password_hash,omitempty"`
	// AllowedHosts are extra names the console answers to (on any port),
	// beyond its listen address, localhost and IP addresses: a LAN name
	// like nas.lan, or the name of a reverse proxy in front of it. Any
	// other Host header is refused, which is what defeats DNS rebinding.
	AllowedHosts []string `yaml:"allowed_hosts,omitempty"`
}

// Features are opt-in behaviours.
type Features struct {
	// LANForwarding allows forwards to hosts other than this machine.
	LANForwarding bool `yaml:"lan_forwarding"`
}

// Profile is a loaded, validated profile.
type Profile struct {
	Dir string
	Config
	// Notice is what Load changed in the file, for the user to read once
	// (empty when nothing).
	Notice string
}

// Path resolves p against the profile directory.
func (p *Profile) Path(rel string) string {
	if filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(p.Dir, rel)
}

// ConfigPath is the profile's config.yaml.
func (p *Profile) ConfigPath() string { return filepath.Join(p.Dir, FileName) }

// KeyPath is the home's private key.
func (p *Profile) KeyPath() string { return p.Path(p.Key) }

// CertsPath is the certificates directory.
func (p *Profile) CertsPath() string { return p.Path(p.CertsDir) }

// TrustedRootsPath is acme.trusted_roots resolved, empty when unset.
func (p *Profile) TrustedRootsPath() string {
	if p.ACME.TrustedRoots == "" {
		return ""
	}
	return p.Path(p.ACME.TrustedRoots)
}

// CloudCAPath is cloud.ca_file resolved, empty when unset.
func (p *Profile) CloudCAPath() string {
	if p.Cloud.CAFile == "" {
		return ""
	}
	return p.Path(p.Cloud.CAFile)
}

// Signer is the home's private key, which signs its API requests and its
// SSH login.
func (p *Profile) Signer() (ssh.Signer, error) {
	b, err := os.ReadFile(p.KeyPath())
	if err != nil {
		return nil, fmt.Errorf("the home's key (key: in %s): %w", p.ConfigPath(), err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("the home's key %s: %w (passphrase-protected keys are not supported)", p.KeyPath(), err)
	}
	return s, nil
}

// CloudClient is a client of the profile's cloud API that signs every
// request with the home's key and verifies the cloud's certificate against
// cloud.ca_file when it is set.
func (p *Profile) CloudClient() (*cloudapi.Client, error) {
	signer, err := p.Signer()
	if err != nil {
		return nil, err
	}
	return p.CloudClientAs(signer)
}

// CloudClientAs is CloudClient signing with signer instead of the key file
// (a key being rotated in).
func (p *Profile) CloudClientAs(signer ssh.Signer) (*cloudapi.Client, error) {
	c, err := cloudapi.NewSigned(p.Cloud.URL, signer, p.Cloud.Home)
	if err != nil {
		return nil, err
	}
	if path := p.CloudCAPath(); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("cloud.ca_file in %s: %w", p.ConfigPath(), err)
		}
		if err := c.TrustCA(b); err != nil {
			return nil, fmt.Errorf("cloud.ca_file %s: %w", path, err)
		}
	}
	return c, nil
}

// DeployPath is acme.deploy_path resolved, empty when unset.
func (p *Profile) DeployPath() string {
	if p.ACME.DeployPath == "" {
		return ""
	}
	return p.Path(p.ACME.DeployPath)
}

// SocketPath is the running console's control socket.
func (p *Profile) SocketPath() string { return filepath.Join(p.Dir, "console.sock") }

// SSHAddr is the cloud's SSH endpoint as host:port.
func (p *Profile) SSHAddr() string {
	return net.JoinHostPort(p.Cloud.SSH.Host, strconv.Itoa(p.Cloud.SSH.Port))
}

// Defaults fills what a new profile leaves out.
func (c *Config) Defaults() {
	if c.Version == 0 {
		c.Version = Version
	}
	if c.Key == "" {
		c.Key = "id_ed25519"
	}
	if c.CertsDir == "" {
		c.CertsDir = "certs"
	}
	if c.Console.Listen == "" {
		c.Console.Listen = "127.0.0.1:8001"
	}
}

// consoleHostRE is a lower-case LDH host name; unlike proto.ValidateHostname
// it takes single labels too, as LAN names often are.
var consoleHostRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// Validate checks every field and returns all problems at once, each naming
// its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Version != Version {
		bad("version", "is %d; this home understands version %d", c.Version, Version)
	}
	if c.Name == "" || strings.ContainsAny(c.Name, "/\\\x00") || strings.HasPrefix(c.Name, ".") {
		bad("name", "%s must be a plain name (no slashes, not starting with a dot)", proto.Printable(c.Name))
	}
	if _, err := cloudapi.ParseURL(c.Cloud.URL); err != nil {
		bad("cloud.url", "%v", err)
	}
	if ca := c.Cloud.CAFile; ca != "" && (strings.ContainsRune(ca, 0) || !strings.HasPrefix(c.Cloud.URL, "https://")) {
		bad("cloud.ca_file", "must be a path (relative to the profile directory, or absolute), and cloud.url an https:// URL")
	}
	if c.Cloud.LegacyToken != "" {
		bad("cloud.token", "a profile holds no account token (the home signs its requests with its own key): remove the line")
	}
	if err := proto.ValidateUsername(c.Cloud.Home); err != nil || c.Cloud.Home == "" {
		bad("cloud.home", "%s is not a home slug; `home register` writes it", proto.Printable(c.Cloud.Home))
	}
	if c.Cloud.SSH.Host == "" || strings.ContainsAny(c.Cloud.SSH.Host, " /\n") {
		bad("cloud.ssh.host", "%s must be the cloud's host name or IP address", proto.Printable(c.Cloud.SSH.Host))
	}
	if err := proto.ValidatePort(c.Cloud.SSH.Port); err != nil {
		bad("cloud.ssh.port", "%v", err)
	}
	if c.Cloud.SSH.User != c.Cloud.Home {
		bad("cloud.ssh.user", "must equal cloud.home (%s): the cloud identifies the home by it", proto.Printable(c.Cloud.Home))
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.Cloud.SSH.HostKey)); err != nil {
		bad("cloud.ssh.host_key", "is not an SSH public key (%v); copy ssh.host_key from GET /api/v1/homes/%s, or register again", err, c.Cloud.Home)
	}
	for field, p := range map[string]string{"key": c.Key, "certs_dir": c.CertsDir} {
		if p == "" || strings.ContainsRune(p, 0) {
			bad(field, "must be a path (relative to the profile directory, or absolute)")
		}
	}
	if u, err := url.Parse(c.ACME.Directory()); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		bad("acme.ca_url", "%s must be an https:// ACME directory URL, letsencrypt or letsencrypt-staging", proto.Printable(c.ACME.CAURL))
	}
	if e := c.ACME.Email; e != "" {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e || a.Name != "" {
			bad("acme.email", "%s must be a plain address like you@example.com", proto.Printable(e))
		}
	}
	if c.ACME.DisableTLSALPN && c.ACME.DisableHTTP01 {
		bad("acme.disable_http01", "and acme.disable_tls_alpn are both true: no challenge type is left to obtain certificates with")
	}
	for field, p := range map[string]string{"acme.trusted_roots": c.ACME.TrustedRoots, "acme.deploy_path": c.ACME.DeployPath} {
		if strings.ContainsRune(p, 0) {
			bad(field, "must be a path (relative to the profile directory, or absolute)")
		}
	}
	if host, port, err := net.SplitHostPort(c.Console.Listen); err != nil || net.ParseIP(host) == nil && host != "localhost" {
		bad("console.listen", "%s must be IP:PORT, like 127.0.0.1:8001", proto.Printable(c.Console.Listen))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("console.listen", "port %s is out of range", proto.Printable(port))
	}
	for i, h := range c.Console.AllowedHosts {
		if !consoleHostRE.MatchString(h) || len(h) > proto.MaxHostnameLen {
			bad(fmt.Sprintf("console.allowed_hosts[%d]", i), "%s must be a lower-case host name without port or wildcard, like nas.lan or nas", proto.Printable(h))
		}
	}
	return errors.Join(errs...)
}

// HostKey parses the pinned host key.
func (c *Config) HostKey() (ssh.PublicKey, error) {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.Cloud.SSH.HostKey))
	return k, err
}

// Load reads and validates the profile in dir (or the directory of a
// config.yaml path). Unknown keys are errors: a typo must not silently
// disable a setting.
func Load(path string) (*Profile, error) {
	dir := path
	if strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml") {
		dir = filepath.Dir(path)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, FileName)
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no profile at %s (no %s); create one with `home register --cloud URL --token TOKEN`", dir, FileName)
	}
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(file); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %o); it holds the console's password hash and names the home's private key: run chmod 600 %s", file, st.Mode().Perm(), file)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %v", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	legacy := c.Cloud.LegacyToken != ""
	c.Cloud.LegacyToken = ""
	legacyDB := c.LegacyDatabase
	c.LegacyDatabase = ""
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s is invalid:\n%w", file, indent(err))
	}
	p := &Profile{Dir: dir, Config: c}
	if legacy {
		p.Notice = dropToken(p)
	}
	if _, err := os.Stat(filepath.Join(dir, "home.db")); legacyDB != "" || err == nil {
		notice, err := convertDatabase(p, legacyDB)
		if err != nil {
			return nil, err
		}
		p.Notice = strings.TrimPrefix(p.Notice+"\n"+notice, "\n")
	}
	return p, nil
}

// dropToken removes the account API token an older profile stored: the
// home signs its requests with its own key, so the token only widens what a
// copy of the profile gives away. A profile that cannot be written (a
// read-only mount) still loads; the token is ignored.
func dropToken(p *Profile) string {
	if err := removeToken(p.ConfigPath()); err != nil {
		return fmt.Sprintf("%s holds an account API token that this home no longer uses; it could not be removed (%v): delete the token: line", p.ConfigPath(), err)
	}
	return fmt.Sprintf("removed the account API token from %s: the home signs its requests with its own key now (revoking or rotating your API tokens no longer affects it)", p.ConfigPath())
}

// removeToken deletes cloud.token from the file, keeping the rest as the
// user wrote it (comments included), atomically and owner-only.
func removeToken(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	removed := false
	if len(doc.Content) == 1 {
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if cloud := root.Content[i+1]; root.Content[i].Value == "cloud" && cloud.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(cloud.Content); j += 2 {
					if cloud.Content[j].Value == "token" {
						cloud.Content = append(cloud.Content[:j], cloud.Content[j+2:]...)
						removed = true
						break
					}
				}
			}
		}
	}
	if !removed {
		return errors.New("no cloud.token found to remove")
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return err
	}
	return atomicfile.Write(file, out, 0o600)
}

func indent(err error) error {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return errors.New(strings.Join(lines, "\n"))
}

// Save writes the config atomically with mode 0600. The forwards: list is
// kept as the file holds it now (the user's comments included), not as it
// was loaded: it may have been edited since.
func (p *Profile) Save() error {
	if err := p.Validate(); err != nil {
		return err
	}
	c := p.Config
	c.Forwards, c.LegacyDatabase = yaml.Node{}, ""
	var root yaml.Node
	if err := root.Encode(&c); err != nil {
		return err
	}
	forwards := currentForwards(p.ConfigPath())
	if forwards == nil && !p.Forwards.IsZero() {
		forwards = &p.Forwards
	}
	if forwards != nil {
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "forwards"}, forwards)
	}
	b, err := yaml.Marshal(&root)
	if err != nil {
		return err
	}
	header := []byte("# homeport home profile. Edit with care; `home` validates it at start.\n")
	return atomicfile.Write(p.ConfigPath(), append(header, b...), 0o600)
}

// currentForwards is the forwards: node of the config.yaml at file, nil
// when it has none (or cannot be read).
func currentForwards(file string) *yaml.Node {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) != 1 {
		return nil
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "forwards" {
			return root.Content[i+1]
		}
	}
	return nil
}
