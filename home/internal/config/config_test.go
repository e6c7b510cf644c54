package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodYAML = `version: 1
name: test
cloud:
  url: http://127.0.0.1:8000
  home: abcdefgh
  ssh:
    host: 127.0.0.1
    port: 8022
    user: abcdefgh
    host_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvGW3Ju0VYnT6o4xBDpVZb5hCuoE4oSy6QOOy0Jy5Yo
key: id_ed25519
certs_dir: certs
console:
  listen: 127.0.0.1:8001
features:
  lan_forwarding: false
`

func write(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadResolvesPathsAgainstTheProfile(t *testing.T) {
	dir := write(t, goodYAML, 0o600)
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyPath() != filepath.Join(dir, "id_ed25519") || p.CachePath() != filepath.Join(dir, "cache", "forwards.json") || p.SSHAddr() != "127.0.0.1:8022" {
		t.Errorf("paths: %s %s %s", p.KeyPath(), p.CachePath(), p.SSHAddr())
	}
	if _, err := Load(filepath.Join(dir, FileName)); err != nil {
		t.Errorf("loading by the file's path: %v", err)
	}
	// Saving round-trips and keeps 0600.
	p.Features.LANForwarding = true
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	again, err := Load(dir)
	if err != nil || !again.Features.LANForwarding {
		t.Fatalf("after save: %+v %v", again, err)
	}
	if st, _ := os.Stat(p.ConfigPath()); st.Mode().Perm() != 0o600 {
		t.Errorf("saved mode %o", st.Mode().Perm())
	}
}

func TestLoadNamesTheBadField(t *testing.T) {
	tests := map[string]struct{ from, to, want string }{
		"version":       {"version: 1", "version: 7", "version:"},
		"name":          {"name: test", "name: ../x", "name:"},
		"url":           {"url: http://127.0.0.1:8000", "url: ftp://x", "cloud.url:"},
		"home":          {"  home: abcdefgh", "  home: \"Bad Slug\"", "cloud.home:"},
		"ssh host":      {"host: 127.0.0.1", "host: \"\"", "cloud.ssh.host:"},
		"ssh port":      {"port: 8022", "port: 70000", "cloud.ssh.port:"},
		"ssh user":      {"user: abcdefgh", "user: root", "cloud.ssh.user:"},
		"host key":      {"host_key: ssh-ed25519 AAAAC3", "host_key: not-a-key AAAAC3", "cloud.ssh.host_key:"},
		"console":       {"listen: 127.0.0.1:8001", "listen: everywhere", "console.listen:"},
		"console hosts": {"listen: 127.0.0.1:8001", "listen: 127.0.0.1:8001\n  allowed_hosts: [nas.lan, \"*.evil\"]", "console.allowed_hosts[1]:"},
		"console port":  {"listen: 127.0.0.1:8001", "listen: 127.0.0.1:8001\n  allowed_hosts: [\"nas:80\"]", "console.allowed_hosts[0]:"},
		"unknown key":   {"certs_dir: certs", "certs_dir: certs\ncert_dir: x", "field cert_dir not found"},
		"wrong type":    {"lan_forwarding: false", "lan_forwarding: maybe", "cannot unmarshal"},
		"not yaml":      {"version: 1", "version: [", "did not find"},
	}
	for name, tt := range tests {
		content := strings.Replace(goodYAML, tt.from, tt.to, 1)
		if content == goodYAML {
			t.Fatalf("%s: replacement %q not found", name, tt.from)
		}
		_, err := Load(write(t, content, 0o600))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, tt.want)
		}
	}
}

func TestLoadRefusesAWorldReadableConfig(t *testing.T) {
	_, err := Load(write(t, goodYAML, 0o644))
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("err = %v", err)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "home register") {
		t.Errorf("missing profile: %v", err)
	}
}

func TestACMESection(t *testing.T) {
	p, err := Load(write(t, goodYAML, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if p.ACME.Directory() != LetsEncrypt || p.TrustedRootsPath() != "" || p.DeployPath() != "" {
		t.Errorf("without an acme section: CA %s, roots %q, deploy %q; want Let's Encrypt and nothing else", p.ACME.Directory(), p.TrustedRootsPath(), p.DeployPath())
	}
	withACME := goodYAML + `acme:
  ca_url: letsencrypt-staging
  email: admin@example.com
  trusted_roots: roots.pem
  deploy_path: /etc/ssl/homeport
  disable_tls_alpn: true
`
	dir := write(t, withACME, 0o600)
	p, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.ACME.Directory() != LetsEncryptStaging || p.TrustedRootsPath() != filepath.Join(dir, "roots.pem") || p.DeployPath() != "/etc/ssl/homeport" || !p.ACME.DisableTLSALPN {
		t.Errorf("acme section: %+v, CA %s, roots %s", p.ACME, p.ACME.Directory(), p.TrustedRootsPath())
	}
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	if again, err := Load(dir); err != nil || again.ACME != p.ACME {
		t.Errorf("acme section after save: %+v %v", again.ACME, err)
	}
	for name, tt := range map[string]struct{ from, to, want string }{
		"http CA":       {"ca_url: letsencrypt-staging", "ca_url: http://ca.example/dir", "acme.ca_url:"},
		"not a URL":     {"ca_url: letsencrypt-staging", "ca_url: pebble", "acme.ca_url:"},
		"email":         {"email: admin@example.com", "email: Admin <admin@example.com>", "acme.email:"},
		"no challenges": {"disable_tls_alpn: true", "disable_tls_alpn: true\n  disable_http01: true", "acme.disable_http01:"},
		"unknown key":   {"email: admin@example.com", "mail: admin@example.com", "field mail not found"},
	} {
		content := strings.Replace(withACME, tt.from, tt.to, 1)
		if _, err := Load(write(t, content, 0o600)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, tt.want)
		}
	}
}

// TestOldProfileWithTokenLoadsAndLosesIt: a profile written before homes
// signed their requests stores the user's API token. It still loads; the
// token is removed from the file on that first load (comments and the rest
// kept, the file still 0600), and the user is told once.
func TestOldProfileWithTokenLoadsAndLosesIt(t *testing.T) {
	old := strings.Replace(goodYAML, "  home: abcdefgh", "  token: hp_secret_of_the_account # pasted by hand\n  home: abcdefgh", 1)
	old = "# my home, edited by hand\n" + old
	dir := write(t, old, 0o600)
	p, err := Load(dir)
	if err != nil {
		t.Fatalf("an old profile with a token does not load: %v", err)
	}
	if !strings.Contains(p.Notice, "removed the account API token") {
		t.Errorf("notice = %q, want one saying the token was removed", p.Notice)
	}
	b, _ := os.ReadFile(p.ConfigPath())
	if strings.Contains(string(b), "hp_secret") || strings.Contains(string(b), "token") {
		t.Errorf("the token is still in the file:\n%s", b)
	}
	if !strings.Contains(string(b), "# my home, edited by hand") || !strings.Contains(string(b), "home: abcdefgh") {
		t.Errorf("removing the token lost the rest of the file:\n%s", b)
	}
	if st, _ := os.Stat(p.ConfigPath()); st.Mode().Perm() != 0o600 {
		t.Errorf("mode after the rewrite %o, want 600", st.Mode().Perm())
	}
	again, err := Load(dir)
	if err != nil || again.Notice != "" || again.Cloud.Home != "abcdefgh" {
		t.Errorf("second load: notice %q, err %v; want it quiet and the same home", again.Notice, err)
	}
	// Saving can never write a token back.
	again.Cloud.LegacyToken = "hp_x"
	if err := again.Save(); err == nil || !strings.Contains(err.Error(), "cloud.token") {
		t.Errorf("saving a profile with a token: %v", err)
	}
}

// TestOldProfileOnAReadOnlyDirectoryStillLoads: when the file cannot be
// rewritten, the profile loads anyway and the notice says what to do.
func TestOldProfileOnAReadOnlyDirectoryStillLoads(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes into a read-only directory: this case cannot be made here")
	}
	dir := write(t, strings.Replace(goodYAML, "  home: abcdefgh", "  token: hp_x\n  home: abcdefgh", 1), 0o600)
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	p, err := Load(dir)
	if err != nil || !strings.Contains(p.Notice, "delete the token: line") {
		t.Fatalf("read-only old profile: %v, notice %q", err, p.Notice)
	}
}
