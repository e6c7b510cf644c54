// Package config owns the cloud's settings: their flags, their CLOUD_*
// environment variables and cloud.yaml keys (all the same names), defaults,
// and validation into one typed Config at start.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/shaper"
	"homeport.dev/proto"
)

// HAProxy modes.
const (
	HAProxyManaged  = "managed"
	HAProxyExternal = "external"
	HAProxyOff      = "off"
)

// Config is the validated configuration of `cloud serve`.
type Config struct {
	Data              string
	APIAddr           string
	SSHAddr           string
	HTTPAddr          string
	HTTPSAddr         string
	TCPPorts          proto.PortRange
	PublicHost        string
	APIHost           string   // the cloud's own web/API name (default PublicHost)
	ReservedDomains   []string // operator-reserved names no tenant may own (lowercased)
	HAProxy           string
	HAProxySocket     string
	HAProxyMaps       string
	ReconcileInterval time.Duration
	ShapeDev          string // interface where bandwidth limits are enforced; shaper.Off disables them
	Dev               bool
	Layout            homes.Layout
	HomesPerUser      int
	MappingsPerHome   int
	AuthRate          int
	LogLevel          string
}

// HAProxyDir holds the managed HAProxy's config, socket and map files.
func (c Config) HAProxyDir() string { return filepath.Join(c.Data, "haproxy") }

// HAProxySocketPath is the runtime API socket: --haproxy-socket, or the
// managed HAProxy's own.
func (c Config) HAProxySocketPath() string {
	if c.HAProxySocket != "" {
		return c.HAProxySocket
	}
	return filepath.Join(c.HAProxyDir(), "admin.sock")
}

// HAProxyMapDir is where the map files live (HAProxy names maps after them).
func (c Config) HAProxyMapDir() string {
	if c.HAProxyMaps != "" {
		return c.HAProxyMaps
	}
	return c.HAProxyDir()
}

// DBPath is the SQLite database inside the data directory.
func (c Config) DBPath() string { return filepath.Join(c.Data, "cloud.db") }

// HostKeyPath is the SSH host key inside the data directory.
func (c Config) HostKeyPath() string { return filepath.Join(c.Data, "ssh_host_ed25519_key") }

// SSHPort is the port part of SSHAddr.
func (c Config) SSHPort() int {
	_, p, _ := net.SplitHostPort(c.SSHAddr)
	n, _ := strconv.Atoi(p)
	return n
}

// raw holds flag values before validation.
type raw struct {
	data, apiAddr, sshAddr, httpAddr, httpsAddr, tcpPorts, publicHost string
	haproxy, haproxySocket, haproxyMaps, configFile, logLevel         string
	shapeDev, apiHost                                                 string
	reservedDomains                                                   []string
	reconcileInterval                                                 time.Duration
	dev                                                               bool
	slots, tunnelBase, tunnelBlock, tcpBlock, homesPerUser, perHome   int
	authRate                                                          int
}

// Flags registers serve's flags on fs and returns a loader that applies
// cloud.yaml and CLOUD_* variables (flags win, then environment, then file)
// and validates the result.
func Flags(fs *pflag.FlagSet) func() (Config, error) {
	r := &raw{}
	fs.StringVar(&r.data, "data", "./cloud-data", "state directory (database, SSH host key, HAProxy map files)")
	fs.StringVar(&r.apiAddr, "api-addr", ":8000", "REST API and web UI listen address")
	fs.StringVar(&r.sshAddr, "ssh-addr", ":8022", "SSH endpoint listen address (homes connect here)")
	fs.StringVar(&r.httpAddr, "http-addr", ":80", "public HTTP listen address (HAProxy)")
	fs.StringVar(&r.httpsAddr, "https-addr", ":443", "public HTTPS listen address (HAProxy, SNI passthrough)")
	fs.StringVar(&r.tcpPorts, "tcp-ports", "10000-10099", "public TCP port range LO-HI (HAProxy); split into per-home blocks")
	fs.StringVar(&r.publicHost, "public-host", "", "name homes use to reach the SSH endpoint (default: this machine's host name)")
	fs.StringVar(&r.apiHost, "api-host", "", "the cloud's own web UI and API name (default: --public-host)")
	fs.StringSliceVar(&r.reservedDomains, "reserved-domains", nil, "comma-separated names no tenant may own, nor any name above or under them (the public and API hosts are always reserved)")
	fs.StringVar(&r.haproxy, "haproxy", "", "HAProxy mode: managed (default when haproxy is on PATH), external or off")
	fs.StringVar(&r.haproxySocket, "haproxy-socket", "", "HAProxy runtime API unix socket, for --haproxy external")
	fs.StringVar(&r.haproxyMaps, "haproxy-maps", "", "directory of the map files, as both the cloud and HAProxy see it (default DATA/haproxy)")
	fs.DurationVar(&r.reconcileInterval, "reconcile-interval", 30*time.Second, "how often HAProxy routes and tc bandwidth classes are compared with the database and repaired")
	fs.StringVar(&r.shapeDev, "shape-dev", "lo", "interface that carries tunnel-port traffic, where bandwidth limits are enforced with tc (off: refuse limits)")
	fs.BoolVar(&r.dev, "dev", false, "bind loopback only and use ports 8080/8443 for a quick local try")
	fs.IntVar(&r.slots, "home-slots", homes.DefaultLayout.Slots, "number of home slots")
	fs.IntVar(&r.tunnelBase, "tunnel-port-base", homes.DefaultLayout.TunnelBase, "first tunnel port (127.0.0.1); slot i owns a block from base+i*block")
	fs.IntVar(&r.tunnelBlock, "tunnel-block", homes.DefaultLayout.TunnelBlock, "tunnel ports per home (a power of two)")
	fs.IntVar(&r.tcpBlock, "tcp-block", homes.DefaultLayout.TCPBlock, "public TCP ports per home, taken from --tcp-ports")
	fs.IntVar(&r.homesPerUser, "homes-per-user", 1, "how many homes one user may claim")
	fs.IntVar(&r.perHome, "mappings-per-home", homes.DefaultLayout.TunnelBlock, "how many mappings one home may have (at most --tunnel-block)")
	fs.IntVar(&r.authRate, "auth-rate", 10, "login and signup attempts allowed per minute per client address and per username")
	fs.StringVar(&r.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&r.configFile, "config", "", "cloud.yaml with the same keys as the flags (default: DATA/cloud.yaml when present)")
	return func() (Config, error) { return r.load(fs) }
}

func (r *raw) load(fs *pflag.FlagSet) (Config, error) {
	// Environment first, so a config file named by CLOUD_CONFIG is found.
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		env := "CLOUD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !f.Changed {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
			f.Changed = true
		}
	})
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	if err := r.applyFile(fs); err != nil {
		return Config{}, err
	}
	return r.validate(fs)
}

func (r *raw) applyFile(fs *pflag.FlagSet) error {
	path, explicit := r.configFile, r.configFile != ""
	if !explicit {
		path = filepath.Join(r.data, "cloud.yaml")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: not valid YAML: %w", path, err)
	}
	for k, v := range m {
		f := fs.Lookup(k)
		if f == nil || k == "config" {
			return fmt.Errorf("%s: unknown key %q; keys are the flag names of `cloud serve --help`", path, k)
		}
		if f.Changed {
			continue
		}
		if err := setFromYAML(f, v); err != nil {
			return fmt.Errorf("%s: %s: %w", path, k, err)
		}
	}
	return nil
}

// setFromYAML sets a flag from a cloud.yaml value: a YAML list for a list
// flag (reserved-domains: [a.com, b.org]), a scalar otherwise.
func setFromYAML(f *pflag.Flag, v any) error {
	list, isList := v.([]any)
	sv, takesList := f.Value.(pflag.SliceValue)
	switch {
	case isList && takesList:
		items := make([]string, len(list))
		for i, x := range list {
			items[i] = fmt.Sprint(x)
		}
		return sv.Replace(items)
	case isList:
		return fmt.Errorf("takes one value, not a list")
	}
	return f.Value.Set(fmt.Sprint(v))
}

func (r *raw) validate(fs *pflag.FlagSet) (Config, error) {
	if r.dev {
		for name, v := range map[string]string{"api-addr": "127.0.0.1:8000", "ssh-addr": "127.0.0.1:8022", "http-addr": "127.0.0.1:8080", "https-addr": "127.0.0.1:8443"} {
			if !fs.Changed(name) {
				_ = fs.Set(name, v)
			}
		}
	}
	c := Config{
		Data: r.data, APIAddr: r.apiAddr, SSHAddr: r.sshAddr, HTTPAddr: r.httpAddr, HTTPSAddr: r.httpsAddr,
		PublicHost: r.publicHost, HAProxy: r.haproxy, HAProxySocket: r.haproxySocket, HAProxyMaps: r.haproxyMaps,
		ReconcileInterval: r.reconcileInterval, ShapeDev: r.shapeDev, Dev: r.dev,
		HomesPerUser: r.homesPerUser, MappingsPerHome: r.perHome, AuthRate: r.authRate, LogLevel: r.logLevel,
	}
	var errs []error
	bad := func(flag string, err error) { errs = append(errs, fmt.Errorf("--%s: %w", flag, err)) }
	// HAProxy names maps by absolute file path, so the data directory is made absolute once here.
	if abs, err := filepath.Abs(c.Data); err != nil {
		bad("data", err)
	} else {
		c.Data = abs
	}
	for flag, addr := range map[string]string{"api-addr": c.APIAddr, "ssh-addr": c.SSHAddr, "http-addr": c.HTTPAddr, "https-addr": c.HTTPSAddr} {
		if err := validateAddr(addr); err != nil {
			bad(flag, err)
		}
	}
	tcp, err := proto.ParsePortRange(r.tcpPorts)
	if err != nil {
		bad("tcp-ports", err)
	}
	c.TCPPorts = tcp
	c.Layout = homes.Layout{Slots: r.slots, TunnelBase: r.tunnelBase, TunnelBlock: r.tunnelBlock, TCPBase: tcp.First, TCPBlock: r.tcpBlock}
	if err := c.Layout.Validate(); err != nil {
		bad("home-slots, --tunnel-port-base, --tunnel-block, --tcp-block", err)
	} else if r.tcpBlock > 0 && c.Layout.TCPRange().Last > tcp.Last {
		bad("tcp-ports", fmt.Errorf("%d homes x %d ports need %s, more than %s; widen the range or lower --tcp-block", r.slots, r.tcpBlock, c.Layout.TCPRange(), tcp))
	}
	if c.PublicHost == "" {
		c.PublicHost, _ = os.Hostname()
		if c.Dev || c.PublicHost == "" {
			c.PublicHost = "127.0.0.1"
		}
	}
	c.PublicHost = strings.ToLower(c.PublicHost)
	if net.ParseIP(c.PublicHost) == nil {
		if err := proto.ValidateHostname(c.PublicHost); err != nil && !isSingleLabel(c.PublicHost) {
			bad("public-host", err)
		}
	}
	c.APIHost = strings.ToLower(r.apiHost)
	if c.APIHost == "" {
		c.APIHost = c.PublicHost
	} else if err := proto.ValidateHostname(c.APIHost); err != nil && net.ParseIP(c.APIHost) == nil {
		bad("api-host", err)
	}
	for _, d := range r.reservedDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" {
			continue
		}
		if err := proto.ValidateHostname(d); err != nil {
			bad("reserved-domains", err)
			continue
		}
		c.ReservedDomains = append(c.ReservedDomains, d)
	}
	switch c.HAProxy {
	case "":
		c.HAProxy = HAProxyOff
		if _, err := exec.LookPath("haproxy"); err == nil {
			c.HAProxy = HAProxyManaged
		}
		if c.HAProxySocket != "" {
			c.HAProxy = HAProxyExternal
		}
	case HAProxyManaged, HAProxyOff:
	case HAProxyExternal:
		if c.HAProxySocket == "" {
			bad("haproxy-socket", fmt.Errorf("external mode needs the runtime socket path"))
		}
	default:
		bad("haproxy", fmt.Errorf("%q is not managed, external or off", c.HAProxy))
	}
	if c.HAProxyMaps != "" && !filepath.IsAbs(c.HAProxyMaps) {
		bad("haproxy-maps", fmt.Errorf("give an absolute path (HAProxy names maps by their file path)"))
	}
	if c.ReconcileInterval < time.Second {
		bad("reconcile-interval", fmt.Errorf("must be at least 1s"))
	}
	if c.ShapeDev != shaper.Off {
		if err := shaper.ValidateDevice(c.ShapeDev); err != nil {
			bad("shape-dev", err)
		}
	}
	if c.HomesPerUser < 1 {
		bad("homes-per-user", fmt.Errorf("must be at least 1"))
	}
	if c.MappingsPerHome < 1 || c.MappingsPerHome > r.tunnelBlock {
		bad("mappings-per-home", fmt.Errorf("must be 1..%d (the tunnel block size)", r.tunnelBlock))
	}
	if c.AuthRate < 1 {
		bad("auth-rate", fmt.Errorf("must be at least 1"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", fmt.Errorf("%q is not debug, info, warn or error", c.LogLevel))
	}
	return c, errors.Join(errs...)
}

func isSingleLabel(h string) bool {
	return !strings.Contains(h, ".") && proto.ValidateHostname(h+".x") == nil
}

func validateAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT (e.g. :8000 or 127.0.0.1:8000)", addr)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("%q: listen on an IP address, not a name", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be 0..65535", addr)
	}
	return nil
}

// Parse validates serve's command line args (plus environment and file) into
// a Config: what tests and tools use to get exactly what the binary would.
func Parse(args []string) (Config, error) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	load := Flags(fs)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	return load()
}
