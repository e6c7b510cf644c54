package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAndDev(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse([]string{"--data", dir, "--haproxy", "off"})
	if err != nil {
		t.Fatal(err)
	}
	// No HTTPS without a DNS name (the host name is a single label): the
	// plain API stays on loopback.
	if c.APIAddr != "127.0.0.1:8000" || c.SSHAddr != ":8022" || c.HTTPAddr != ":80" || c.HTTPSAddr != ":443" ||
		c.TCPPorts.String() != "10000-10099" || c.Layout.Slots != 10 || c.ReconcileInterval != 30*time.Second || c.PublicHTTPSPort != 443 {
		t.Errorf("defaults = %+v", c)
	}
	d, err := Parse([]string{"--data", dir, "--dev", "--haproxy", "off"})
	if err != nil {
		t.Fatal(err)
	}
	if d.APIAddr != "127.0.0.1:8000" || d.HTTPAddr != "127.0.0.1:8080" || d.HTTPSAddr != "127.0.0.1:8443" || d.PublicHost != "127.0.0.1" || d.PublicHTTPSPort != 8443 {
		t.Errorf("--dev = %+v", d)
	}
	// Behind a port forward from 443, visitors are sent to 443.
	if f, err := Parse([]string{"--data", dir, "--dev", "--haproxy", "off", "--public-https-port", "443"}); err != nil || f.PublicHTTPSPort != 443 || f.HTTPSAddr != "127.0.0.1:8443" {
		t.Errorf("--dev --public-https-port 443 = %+v, %v", f, err)
	}
}

func TestFlagsWinOverEnvironmentOverFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cloud.yaml"), []byte("home-slots: 5\napi-addr: 127.0.0.1:7000\nssh-addr: 127.0.0.1:7022\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CLOUD_API_ADDR", "127.0.0.1:7100")
	c, err := Parse([]string{"--data", dir, "--haproxy", "off", "--ssh-addr", "127.0.0.1:7200"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Layout.Slots != 5 || c.APIAddr != "127.0.0.1:7100" || c.SSHAddr != "127.0.0.1:7200" {
		t.Errorf("got slots=%d api=%s ssh=%s; want file, env, flag", c.Layout.Slots, c.APIAddr, c.SSHAddr)
	}
}

func TestBadConfigNamesTheFlag(t *testing.T) {
	dir := t.TempDir()
	tests := map[string][]string{
		"--tcp-ports":           {"--tcp-ports", "10099-10000"},
		"--api-addr":            {"--api-addr", "localhost"},
		"--haproxy":             {"--haproxy", "sometimes"},
		"--haproxy-socket":      {"--haproxy", "external"},
		"--tunnel-block":        {"--tunnel-block", "10"},
		"--mappings-per-home":   {"--mappings-per-home", "17"},
		"--tcp-ports:":          {"--tcp-ports", "10000-10010"}, // 10 homes x 10 ports do not fit
		"--reconcile-interval":  {"--reconcile-interval", "10ms"},
		"--log-level":           {"--log-level", "loud"},
		"--public-https-port":   {"--public-https-port", "70000"},
		"--ssh-spare-channels":  {"--ssh-spare-channels", "-1"},
		"--ssh-spare-channels:": {"--ssh-spare-channels", "65"},
	}
	for want, args := range tests {
		_, err := Parse(append([]string{"--data", dir}, args...))
		if err == nil || !strings.Contains(err.Error(), strings.TrimSuffix(want, ":")) {
			t.Errorf("%v: err = %v, want it to name %s", args, err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cloud.yaml"), []byte("slots: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]string{"--data", dir}); err == nil || !strings.Contains(err.Error(), `unknown key "slots"`) {
		t.Errorf("unknown yaml key: %v", err)
	}
}

func TestYAMLListsSetListFlags(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cloud.yaml"), []byte("reserved-domains: [A.com, b.org]\nhaproxy: \"off\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]string{"--data", dir})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.ReservedDomains, " ") != "a.com b.org" {
		t.Errorf("reserved-domains from a YAML list = %q, want [a.com b.org]", c.ReservedDomains)
	}
	if err := os.WriteFile(filepath.Join(dir, "cloud.yaml"), []byte("reserved-domains:\n  - a.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Parse([]string{"--data", dir, "--haproxy", "off"}); err != nil || strings.Join(c.ReservedDomains, " ") != "a.com" {
		t.Errorf("block list: %q, %v", c.ReservedDomains, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cloud.yaml"), []byte("home-slots: [1, 2]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]string{"--data", dir, "--haproxy", "off"}); err == nil || !strings.Contains(err.Error(), "home-slots: takes one value, not a list") {
		t.Errorf("a list for a single-value flag: %v", err)
	}
}

// TestDBIsAFileOrAPostgresURL: --db defaults to DATA/cloud.db, takes another
// SQLite file (made absolute) or a postgres:// URL naming a database, and
// refuses a URL without one without quoting its password back.
func TestDBIsAFileOrAPostgresURL(t *testing.T) {
	dir := t.TempDir()
	other, _ := filepath.Abs("other.db")
	for db, want := range map[string]string{
		"":         filepath.Join(dir, "cloud.db"),
		"other.db": other,
		"postgres://cloud:s3cret@db.internal:5432/homeport?sslmode=verify-full": "postgres://cloud:s3cret@db.internal:5432/homeport?sslmode=verify-full",
	} {
		c, err := Parse([]string{"--data", dir, "--haproxy", "off", "--db", db})
		if err != nil || c.DBPath() != want {
			t.Errorf("--db %q: database %q (%v), want %q", db, c.DBPath(), err, want)
		}
	}
	_, err := Parse([]string{"--data", dir, "--haproxy", "off", "--db", "postgres://cloud:s3cret@db.internal"})
	if err == nil || !strings.Contains(err.Error(), "--db") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("a URL without a database: %v, want --db named and the password not shown", err)
	}
}

// TestSharedDomain: --shared-domain comes from the flag, CLOUD_SHARED_DOMAIN
// or cloud.yaml, lower-cased; an IP address, a single label or a bad name is
// refused naming the flag.
func TestSharedDomain(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse([]string{"--data", dir, "--haproxy", "off", "--shared-domain", "Homes.Example.NET"})
	if err != nil || c.SharedDomain != "homes.example.net" {
		t.Errorf("flag: %q %v, want homes.example.net", c.SharedDomain, err)
	}
	if c, err := Parse([]string{"--data", dir, "--haproxy", "off"}); err != nil || c.SharedDomain != "" {
		t.Errorf("default: %q %v, want none", c.SharedDomain, err)
	}
	t.Setenv("CLOUD_SHARED_DOMAIN", "env.example.net")
	if c, err := Parse([]string{"--data", dir, "--haproxy", "off"}); err != nil || c.SharedDomain != "env.example.net" {
		t.Errorf("environment: %q %v", c.SharedDomain, err)
	}
	os.Unsetenv("CLOUD_SHARED_DOMAIN")
	file := filepath.Join(dir, "cloud.yaml")
	if err := os.WriteFile(file, []byte("shared-domain: file.example.net\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Parse([]string{"--data", dir, "--haproxy", "off"}); err != nil || c.SharedDomain != "file.example.net" {
		t.Errorf("cloud.yaml: %q %v", c.SharedDomain, err)
	}
	os.Remove(file)
	for _, bad := range []string{"10.0.0.1", "homes", "a b.example.net", "x;y.example.net", strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + ".example.net"} {
		if _, err := Parse([]string{"--data", dir, "--haproxy", "off", "--shared-domain", bad}); err == nil || !strings.Contains(err.Error(), "--shared-domain") {
			t.Errorf("--shared-domain %q: %v, want refused naming the flag", bad, err)
		}
	}
}

// --reuse-home-connections is on for a new cloud; an operator with old home
// agents turns it off by flag, CLOUD_REUSE_HOME_CONNECTIONS or cloud.yaml.
// TestSpareChannels: two per busy port by default, 0 turns them off.
func TestSpareChannels(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want int
	}{{nil, 2}, {[]string{"--ssh-spare-channels", "0"}, 0}, {[]string{"--ssh-spare-channels", "8"}, 8}} {
		c, err := Parse(append([]string{"--data", dir, "--haproxy", "off"}, tc.args...))
		if err != nil || c.Limits.SpareChannels != tc.want {
			t.Errorf("%v: %d, %v; want %d", tc.args, c.Limits.SpareChannels, err, tc.want)
		}
	}
}

func TestReuseHomeConnections(t *testing.T) {
	dir := t.TempDir()
	if c, err := Parse([]string{"--data", dir, "--haproxy", "off"}); err != nil || !c.ReuseHomeConnections {
		t.Errorf("default: %v, %v; want on", c.ReuseHomeConnections, err)
	}
	if c, err := Parse([]string{"--data", dir, "--haproxy", "off", "--reuse-home-connections=false"}); err != nil || c.ReuseHomeConnections {
		t.Errorf("flag off: %v, %v", c.ReuseHomeConnections, err)
	}
	t.Run("environment", func(t *testing.T) {
		t.Setenv("CLOUD_REUSE_HOME_CONNECTIONS", "false")
		if c, err := Parse([]string{"--data", dir, "--haproxy", "off"}); err != nil || c.ReuseHomeConnections {
			t.Errorf("CLOUD_REUSE_HOME_CONNECTIONS=false: %v, %v", c.ReuseHomeConnections, err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "cloud.yaml"), []byte("reuse-home-connections: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Parse([]string{"--data", dir, "--haproxy", "off"}); err != nil || c.ReuseHomeConnections {
		t.Errorf("cloud.yaml false: %v, %v", c.ReuseHomeConnections, err)
	}
}
