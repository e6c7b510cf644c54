// Package config owns the cloud's settings: their flags, their CLOUD_*
// environment variables and cloud.yaml keys (all the same names), defaults,
// and validation into one typed Config at start.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/budget"
	"homeport.dev/cloud/internal/domains"
	"homeport.dev/cloud/internal/edges"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/shaper"
	"homeport.dev/cloud/internal/store"
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
	DB                string // the database: a SQLite file (default DATA/cloud.db) or a postgres:// URL
	Edge              string // this node's edge name when several share one PostgreSQL; "" for a single cloud
	APIAddr           string
	SSHAddr           string
	HTTPAddr          string
	HTTPSAddr         string
	PublicHTTPSPort   int // the port visitors reach HTTPSAddr on (--public-https-port; default HTTPSAddr's)
	TCPPorts          proto.PortRange
	PublicHost        string
	APIHost           string   // the cloud's own web/API name (default PublicHost)
	TLS               TLS      // how the cloud serves APIHost over HTTPS
	MetricsAddr       string   // Prometheus endpoint; empty when off
	DebugPprof        bool     // Go's /debug/pprof on the metrics listener (hidden --debug-pprof)
	Warnings          []string // settings that work but deserve the operator's attention at start
	ReservedDomains   []string // operator-reserved names no tenant may own (lowercased)
	SharedDomain      string   // names SLUG.SHARED and LABEL-SLUG.SHARED homes may publish without a domain; "" when none
	HAProxy           string
	HAProxySocket     string
	HAProxyMaps       string
	ReconcileInterval time.Duration
	ShapeDev          string // interface where bandwidth limits are enforced; shaper.Off disables them
	Dev               bool
	Layout            homes.Layout
	HomesPerUser      int
	MappingsPerHome   int
	DomainsPerHome    int
	AuthRate          int
	WriteRate         int    // changes per minute per account, API and web UI together (--write-rate)
	Signup            string // proto.SignupOpen, SignupApproval, SignupInvite or SignupClosed
	LogLevel          string
	Limits            Limits

	// ReuseHomeConnections: public HTTP reaches homes without a PROXY
	// header (the visitor in X-Forwarded-For), so HAProxy shares its
	// connections to a home between visitors (--reuse-home-connections).
	ReuseHomeConnections bool

	// AuditRetention: audit records older than this are pruned; 0 keeps them all.
	AuditRetention time.Duration
}

// Limits are what one home, one route and one frontend may make the edge
// hold (see package budget for how the defaults were sized).
type Limits struct {
	ChannelsPerHome int     // open tunnel channels of one home, both directions
	ChannelsPerConn int     // open channels of one SSH connection
	PendingPerHome  int     // direct-tcpip opens of one home being dialled
	ConnsPerHome    int     // live SSH connections of one home
	ConnsPerIP      int     // SSH connections from one address, before login
	RequestRate     float64 // SSH global requests per second per connection
	OpenRate        float64 // direct-tcpip channel opens per second per connection
	SpareChannels   int     // forwarded-tcpip channels opened ahead of visitors per busy public tunnel port
	RouteMaxConn    int     // concurrent public connections of one route (HAProxy)
	FrontendMaxConn int     // concurrent connections of one public frontend (HAProxy)
}

// HTTPS modes of the cloud's own name.
const (
	HTTPSOff   = ""      // plain HTTP only (--dev, an IP or single-label API host, no HAProxy)
	HTTPSACME  = "acme"  // certificates from an ACME CA (certmagic)
	HTTPSFiles = "files" // the operator's --tls-cert/--tls-key, reloaded on change
)

// LetsEncrypt is the default --acme-ca.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// TLS is how the cloud serves its own name (APIHost) over HTTPS: HAProxy
// passes connections whose SNI is APIHost, and plain-HTTP requests for
// APIHost's ACME challenges, to Addr with a PROXY v2 header.
type TLS struct {
	Mode         string // HTTPSOff, HTTPSACME or HTTPSFiles
	Addr         string // the cloud's own TLS listener, for HAProxy only (an IP address)
	ACMECA       string // ACME directory URL
	ACMEEmail    string
	ACMEProfile  string        // certificate profile asked of the CA; empty for its default
	TrustedRoots string        // PEM file trusted for the CA's own HTTPS instead of the system roots
	RenewCheck   time.Duration // how often certificates are checked for renewal
	CertFile     string        // operator's certificate chain (HTTPSFiles)
	KeyFile      string        // operator's private key (HTTPSFiles)
}

// On reports whether the cloud serves its own name over HTTPS.
func (t TLS) On() bool { return t.Mode != HTTPSOff }

// StorageDir is where certmagic keeps the cloud's own ACME account and
// certificates.
func (c Config) StorageDir() string { return filepath.Join(c.Data, "certmagic") }

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

// DBPath is the database store.Open takes: --db, or the SQLite file
// cloud.db inside the data directory.
func (c Config) DBPath() string {
	if c.DB != "" {
		return c.DB
	}
	return filepath.Join(c.Data, "cloud.db")
}

// setDB validates --db: a PostgreSQL URL naming a database, or a SQLite
// file (made absolute). The URL is never quoted back: it may hold a password.
func (c *Config) setDB(db string) error {
	switch {
	case db == "":
		return nil
	case store.IsPostgres(db):
		if u, err := url.Parse(db); err != nil || strings.Trim(u.Path, "/") == "" {
			return fmt.Errorf("give postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
		}
		c.DB = db
	default:
		abs, err := filepath.Abs(db)
		if err != nil {
			return err
		}
		c.DB = abs
	}
	return nil
}

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
	db, edge                                                          string
	haproxy, haproxySocket, haproxyMaps, configFile, logLevel         string
	shapeDev, apiHost                                                 string
	tlsAddr, acmeCA, acmeEmail, acmeProfile, acmeRoots, tlsCert       string
	tlsKey, metricsAddr                                               string
	sharedDomain                                                      string
	publicHTTPSPort                                                   int
	acmeRenewCheck                                                    time.Duration
	debugPprof                                                        bool
	reuseHomeConns                                                    bool
	reservedDomains                                                   []string
	reconcileInterval                                                 time.Duration
	dev                                                               bool
	slots, tunnelBase, tunnelBlock, tcpBlock, homesPerUser, perHome   int
	authRate                                                          int
	writeRate                                                         int
	signup                                                            string
	auditRetention                                                    string
	limits                                                            Limits
	domainsPerHome                                                    int
}

// Flags registers serve's flags on fs and returns a loader that applies
// cloud.yaml and CLOUD_* variables (flags win, then environment, then file)
// and validates the result.
func Flags(fs *pflag.FlagSet) func() (Config, error) {
	r := &raw{}
	fs.StringVar(&r.data, "data", "./cloud-data", "state directory (database, SSH host key, HAProxy map files)")
	fs.StringVar(&r.db, "db", "", "database: a SQLite file or postgres://USER@HOST/DATABASE for several cloud nodes (password: PGPASSWORD or ~/.pgpass) (default DATA/cloud.db)")
	fs.StringVar(&r.edge, "edge", "", "this node's edge name when several cloud nodes share one PostgreSQL (--db postgres://...): it serves the homes assigned to it (default: none, a single cloud serving every home)")
	fs.StringVar(&r.apiAddr, "api-addr", "127.0.0.1:8000", "plain-HTTP REST API and web UI listen address: loopback, for the cloud CLI and health checks (the world reaches them over HTTPS at --api-host); set it to serve them in clear beyond this machine")
	fs.StringVar(&r.sshAddr, "ssh-addr", ":8022", "SSH endpoint listen address (homes connect here)")
	fs.StringVar(&r.httpAddr, "http-addr", ":80", "public HTTP listen address (HAProxy)")
	fs.StringVar(&r.httpsAddr, "https-addr", ":443", "public HTTPS listen address (HAProxy, SNI passthrough)")
	fs.IntVar(&r.publicHTTPSPort, "public-https-port", 0, "port visitors reach --https-addr on, named in the http->https redirects and the cloud's URL unless it is 443 (default: --https-addr's port; set it behind a NAT or port forward)")
	fs.StringVar(&r.tcpPorts, "tcp-ports", "10000-10099", "public TCP port range LO-HI (HAProxy); split into per-home blocks")
	fs.StringVar(&r.publicHost, "public-host", "", "name homes use to reach the SSH endpoint (default: this machine's host name)")
	fs.StringVar(&r.apiHost, "api-host", "", "the cloud's own web UI and API name, served over HTTPS through HAProxy when it is a DNS name (default: --public-host)")
	fs.StringVar(&r.tlsAddr, "tls-addr", "127.0.0.1:8444", "the cloud's own HTTPS listener, which HAProxy's public HTTPS and HTTP ports pass --api-host to (PROXY protocol; not for clients)")
	fs.StringVar(&r.acmeCA, "acme-ca", LetsEncrypt, "ACME directory URL the cloud gets the certificate for --api-host from")
	fs.StringVar(&r.acmeEmail, "acme-email", "", "contact address of the cloud's ACME account (expiry and incident notices)")
	fs.StringVar(&r.acmeRoots, "acme-trusted-roots", "", "PEM file of roots trusted for the ACME CA's own HTTPS, instead of the system's (a private or test CA)")
	fs.StringVar(&r.acmeProfile, "acme-profile", "", "certificate profile to ask the ACME CA for (default: the CA's default)")
	fs.DurationVar(&r.acmeRenewCheck, "acme-renew-check", 10*time.Minute, "how often the cloud's certificate is checked for renewal")
	_ = fs.MarkHidden("acme-renew-check") // tests with short-lived certificates
	fs.StringVar(&r.tlsCert, "tls-cert", "", "PEM certificate chain for --api-host instead of ACME (re-read when it changes on disk)")
	fs.StringVar(&r.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&r.metricsAddr, "metrics-addr", "127.0.0.1:9100", "Prometheus /metrics listen address, never authenticated: keep it on loopback or a private network (off: none)")
	fs.BoolVar(&r.debugPprof, "debug-pprof", false, "serve Go's /debug/pprof on the metrics listener (profiles; never on a public address)")
	_ = fs.MarkHidden("debug-pprof") // the scale tests measure memory after a forced GC
	fs.StringSliceVar(&r.reservedDomains, "reserved-domains", nil, "comma-separated names no tenant may own, nor any name above or under them (the public and API hosts are always reserved)")
	fs.StringVar(&r.sharedDomain, "shared-domain", "", "domain with a wildcard DNS record (*.NAME) to this cloud, under which every home may publish SLUG.NAME and LABEL-SLUG.NAME without owning a domain (default: none)")
	fs.StringVar(&r.haproxy, "haproxy", "", "HAProxy mode: managed (default when haproxy is on PATH), external or off")
	fs.StringVar(&r.haproxySocket, "haproxy-socket", "", "HAProxy runtime API unix socket, for --haproxy external")
	fs.StringVar(&r.haproxyMaps, "haproxy-maps", "", "directory of the map files, as both the cloud and HAProxy see it (default DATA/haproxy)")
	fs.BoolVar(&r.reuseHomeConns, "reuse-home-connections", true, "send public HTTP to homes with the visitor in X-Forwarded-For instead of a PROXY header, so HAProxy reuses its connections to a home across visitors; turn it off while home agents older than SSH-2.0-homeport-home-2 (the version the web UI shows) are connected: they refuse HTTP without the header")
	fs.DurationVar(&r.reconcileInterval, "reconcile-interval", 30*time.Second, "how often HAProxy routes and tc bandwidth classes are compared with the database and repaired")
	fs.StringVar(&r.shapeDev, "shape-dev", "lo", "interface that carries tunnel-port traffic, where bandwidth limits are enforced with tc (off: refuse limits)")
	fs.BoolVar(&r.dev, "dev", false, "bind loopback only and use ports 8080/8443 for a quick local try")
	fs.IntVar(&r.slots, "home-slots", homes.DefaultLayout.Slots, "number of home slots")
	fs.IntVar(&r.tunnelBase, "tunnel-port-base", homes.DefaultLayout.TunnelBase, "first tunnel port (127.0.0.1); slot i owns a block from base+i*block")
	fs.IntVar(&r.tunnelBlock, "tunnel-block", homes.DefaultLayout.TunnelBlock, "tunnel ports per home (a power of two)")
	fs.IntVar(&r.tcpBlock, "tcp-block", homes.DefaultLayout.TCPBlock, "public TCP ports per home, taken from --tcp-ports")
	fs.IntVar(&r.homesPerUser, "homes-per-user", 1, "how many homes one user may claim")
	fs.IntVar(&r.domainsPerHome, "domains-per-home", domains.DefaultPerHome, "how many base domains one home may register")
	fs.IntVar(&r.perHome, "mappings-per-home", homes.DefaultLayout.TunnelBlock, "how many mappings one home may have (at most --tunnel-block)")
	fs.IntVar(&r.authRate, "auth-rate", 10, "login and signup attempts allowed per minute per client address and per username")
	fs.IntVar(&r.writeRate, "write-rate", 600, "changes (API POST/PATCH/DELETE, web forms) allowed per minute per account, its homes' credentials included; each change is also an audit record")
	fs.StringVar(&r.signup, "signup", proto.SignupApproval, "who may create an account: open (active at once), approval (an admin approves it), invite (only with an invitation link), closed")
	fs.IntVar(&r.limits.ChannelsPerHome, "ssh-channels-per-home", budget.DefaultChannelsPerHome, "open tunnel channels (visitor connections and home-opened direct-tcpip) one home may hold at once")
	fs.IntVar(&r.limits.ChannelsPerConn, "ssh-channels-per-conn", budget.DefaultChannelsPerHome, "open channels one SSH connection may hold at once (at most --ssh-channels-per-home)")
	fs.IntVar(&r.limits.PendingPerHome, "ssh-pending-per-home", budget.DefaultPendingPerHome, "direct-tcpip channel opens of one home that may be in progress at once")
	fs.IntVar(&r.limits.ConnsPerHome, "ssh-conns-per-home", 4, "live SSH connections one home may hold (a reconnect takes the previous one over)")
	fs.IntVar(&r.limits.ConnsPerIP, "ssh-conns-per-ip", 32, "SSH connections one client address may hold while they log in (unauthenticated); logged-in ones count against their home (--ssh-conns-per-home)")
	fs.Float64Var(&r.limits.RequestRate, "ssh-request-rate", 10, "SSH global requests (forwards, keepalives) per second one connection may send (burst 64)")
	fs.Float64Var(&r.limits.OpenRate, "ssh-open-rate", 50, "channel opens (home connect, direct-tcpip) per second one connection may make (burst twice that)")
	fs.IntVar(&r.limits.SpareChannels, "ssh-spare-channels", 2, "channels to the home each busy public tunnel port keeps open ahead of its visitors, so that a new connection skips the channel open's round trip (closed 2 s after the port's last visitor; each counts against --ssh-channels-per-home); 0 turns this off")
	fs.IntVar(&r.limits.RouteMaxConn, "route-maxconn", budget.DefaultChannelsPerHome, "concurrent public connections one route may hold in HAProxy")
	fs.IntVar(&r.limits.FrontendMaxConn, "frontend-maxconn", 10000, "concurrent connections each public HAProxy frontend (80, 443, TCP range) may hold")
	fs.StringVar(&r.auditRetention, "audit-retention", "365d", "how long audit records are kept (e.g. 365d, 720h); 0 keeps them forever")
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
	var m map[string]yaml.Node
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
		if err := setFromYAML(f, &v); err != nil {
			return fmt.Errorf("%s: %s: %w", path, k, err)
		}
		f.Changed = true // set by the operator, like a flag: defaults derived later leave it alone
	}
	return nil
}

// setFromYAML sets a flag from a cloud.yaml value: a YAML list for a list
// flag (reserved-domains: [a.com, b.org]), a scalar otherwise, each taken
// as written. An empty value or a mapping is refused, not turned into a
// Go rendering like "<nil>" or "map[a:b]" (FuzzParseFile: `data:` made the
// data directory ./<nil>).
func setFromYAML(f *pflag.Flag, n *yaml.Node) error {
	sv, takesList := f.Value.(pflag.SliceValue)
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		v, err := yamlScalar(n)
		if err != nil {
			return err
		}
		return f.Value.Set(v)
	}
	if !takesList {
		return fmt.Errorf("takes one value, not a list")
	}
	items := make([]string, len(n.Content))
	for i, it := range n.Content {
		v, err := yamlScalar(it)
		if err != nil {
			return fmt.Errorf("item %d: %w", i+1, err)
		}
		items[i] = v
	}
	return sv.Replace(items)
}

// yamlScalar is the text of a scalar YAML value.
func yamlScalar(n *yaml.Node) (string, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch {
	case n.Kind != yaml.ScalarNode:
		return "", fmt.Errorf("takes a value, not a mapping or a list")
	case n.Tag == "!!null":
		return "", fmt.Errorf("has no value; remove the key to use the default")
	}
	return n.Value, nil
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
	if err := c.setDB(r.db); err != nil {
		bad("db", err)
	}
	if r.edge != "" {
		if err := edges.ValidName(r.edge); err != nil {
			bad("edge", err)
		} else if !store.IsPostgres(c.DB) {
			bad("edge", fmt.Errorf("edges share one PostgreSQL database: give --db postgres://... too"))
		}
		c.Edge = r.edge
	}
	for flag, addr := range map[string]string{"api-addr": c.APIAddr, "ssh-addr": c.SSHAddr, "http-addr": c.HTTPAddr, "https-addr": c.HTTPSAddr} {
		if err := validateAddr(addr); err != nil {
			bad(flag, err)
		}
	}
	c.PublicHTTPSPort = r.publicHTTPSPort
	if c.PublicHTTPSPort == 0 {
		_, port, _ := net.SplitHostPort(c.HTTPSAddr)
		c.PublicHTTPSPort, _ = strconv.Atoi(port)
	} else if c.PublicHTTPSPort < 1 || c.PublicHTTPSPort > 65535 {
		bad("public-https-port", fmt.Errorf("%d is not a port (1-65535)", c.PublicHTTPSPort))
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
	if c.SharedDomain = proto.NormalizeHostname(r.sharedDomain); c.SharedDomain != "" {
		if err := validateSharedDomain(c.SharedDomain); err != nil {
			bad("shared-domain", err)
		}
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
	c.TLS, c.APIAddr, c.MetricsAddr = r.validateTLS(fs, c, bad)
	c.DebugPprof = r.debugPprof
	c.ReuseHomeConnections = r.reuseHomeConns
	if c.DebugPprof && c.MetricsAddr == "" {
		bad("debug-pprof", fmt.Errorf("needs --metrics-addr (it serves there)"))
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
	c.DomainsPerHome = r.domainsPerHome
	if c.DomainsPerHome < 1 || c.DomainsPerHome > 10000 {
		bad("domains-per-home", fmt.Errorf("must be 1..10000"))
	}
	if c.MappingsPerHome < 1 || c.MappingsPerHome > r.tunnelBlock {
		bad("mappings-per-home", fmt.Errorf("must be 1..%d (the tunnel block size)", r.tunnelBlock))
	}
	if c.AuthRate < 1 {
		bad("auth-rate", fmt.Errorf("must be at least 1"))
	}
	if c.WriteRate = r.writeRate; c.WriteRate < 1 {
		bad("write-rate", fmt.Errorf("must be at least 1"))
	}
	switch c.Signup = r.signup; c.Signup {
	case proto.SignupOpen, proto.SignupApproval, proto.SignupInvite, proto.SignupClosed:
	default:
		bad("signup", fmt.Errorf("%s is not a signup mode: choose open, approval, invite or closed", proto.Printable(c.Signup)))
	}
	if r.auditRetention != "0" {
		if c.AuditRetention, err = audit.ParseAge(r.auditRetention); err != nil {
			bad("audit-retention", err)
		} else if c.AuditRetention < time.Hour {
			bad("audit-retention", fmt.Errorf("keep records at least an hour (1h), or 0 to keep them forever"))
		}
	}
	c.Limits = r.limits
	for _, l := range []struct {
		flag string
		v    int
	}{{"ssh-channels-per-home", r.limits.ChannelsPerHome}, {"ssh-channels-per-conn", r.limits.ChannelsPerConn},
		{"ssh-pending-per-home", r.limits.PendingPerHome}, {"ssh-conns-per-home", r.limits.ConnsPerHome},
		{"ssh-conns-per-ip", r.limits.ConnsPerIP}, {"route-maxconn", r.limits.RouteMaxConn}, {"frontend-maxconn", r.limits.FrontendMaxConn}} {
		if l.v < 1 || l.v > 1_000_000 {
			bad(l.flag, fmt.Errorf("must be 1..1000000"))
		}
	}
	if r.limits.ConnsPerHome < 2 {
		bad("ssh-conns-per-home", fmt.Errorf("must be at least 2: a reconnecting home holds its old connection until the new one takes over"))
	}
	if r.limits.SpareChannels < 0 || r.limits.SpareChannels > 64 {
		bad("ssh-spare-channels", fmt.Errorf("must be 0..64"))
	}
	if r.limits.OpenRate < 1 {
		bad("ssh-open-rate", fmt.Errorf("must be at least 1"))
	}
	if r.limits.RequestRate < 1 {
		bad("ssh-request-rate", fmt.Errorf("must be at least 1 (a home asks for each of its forwards at connect)"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", fmt.Errorf("%q is not debug, info, warn or error", c.LogLevel))
	}
	if !c.TLS.On() && c.HAProxy != HAProxyOff && !c.Dev {
		c.Warnings = append(c.Warnings, r.httpsOffReason(c))
	}
	return c, errors.Join(errs...)
}

// validateTLS decides how the cloud serves its own name, and with HTTPS on
// keeps the plain API on loopback unless the operator chose its address.
func (r *raw) validateTLS(fs *pflag.FlagSet, c Config, bad func(string, error)) (TLS, string, string) {
	t := TLS{
		Addr: r.tlsAddr, ACMECA: r.acmeCA, ACMEEmail: r.acmeEmail, ACMEProfile: r.acmeProfile,
		TrustedRoots: r.acmeRoots, RenewCheck: r.acmeRenewCheck, CertFile: r.tlsCert, KeyFile: r.tlsKey,
	}
	if host, port, err := net.SplitHostPort(t.Addr); err != nil || validateAddr(t.Addr) != nil {
		bad("tls-addr", fmt.Errorf("%q is not IP:PORT (e.g. 127.0.0.1:8444)", t.Addr))
	} else if ip := net.ParseIP(host); ip == nil || ip.To4() == nil || ip.IsUnspecified() || port == "0" {
		bad("tls-addr", fmt.Errorf("%q: give the IPv4 address and fixed port HAProxy connects to, e.g. 127.0.0.1:8444", t.Addr))
	}
	if u, err := url.Parse(t.ACMECA); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		bad("acme-ca", fmt.Errorf("%s must be an https:// ACME directory URL", proto.Printable(t.ACMECA)))
	}
	if e := t.ACMEEmail; e != "" {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e || a.Name != "" {
			bad("acme-email", fmt.Errorf("%s must be a plain address like you@example.com", proto.Printable(e)))
		}
	}
	if t.ACMEProfile != "" && !profileRE.MatchString(t.ACMEProfile) {
		bad("acme-profile", fmt.Errorf("%s is not a profile name (letters, digits, '-', '_', '.')", proto.Printable(t.ACMEProfile)))
	}
	if t.TrustedRoots != "" {
		if b, err := os.ReadFile(t.TrustedRoots); err != nil {
			bad("acme-trusted-roots", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			bad("acme-trusted-roots", fmt.Errorf("%s holds no PEM certificate", t.TrustedRoots))
		}
	}
	if t.RenewCheck < time.Second {
		bad("acme-renew-check", fmt.Errorf("must be at least 1s"))
	}
	metrics := r.metricsAddr
	if metrics == "off" {
		metrics = ""
	} else if err := validateAddr(metrics); err != nil {
		bad("metrics-addr", fmt.Errorf("%w, or off", err))
	}
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		bad("tls-cert", fmt.Errorf("give both --tls-cert and --tls-key, or neither"))
	case c.Dev:
		if t.CertFile != "" {
			bad("tls-cert", fmt.Errorf("--dev serves plain HTTP on loopback; drop --tls-cert/--tls-key or --dev"))
		}
	case c.HAProxy == HAProxyOff:
	case t.CertFile != "":
		if net.ParseIP(c.APIHost) != nil || isSingleLabel(c.APIHost) {
			bad("tls-cert", fmt.Errorf("--api-host %s is not a DNS name: HAProxy routes the cloud's HTTPS by the name clients send (SNI); set --api-host", c.APIHost))
		}
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			bad("tls-cert", fmt.Errorf("%s with %s: %w", t.CertFile, t.KeyFile, err))
		}
		t.Mode = HTTPSFiles
	case net.ParseIP(c.APIHost) == nil && !isSingleLabel(c.APIHost):
		t.Mode = HTTPSACME
	}
	// The plain API's default is loopback (the cloud CLI and health checks;
	// browsers and homes come through https://API-HOST), with or without
	// HTTPS: passwords and tokens never cross a network in clear unless the
	// operator sets --api-addr beyond it.
	return t, c.APIAddr, metrics
}

// httpsOffReason says why the cloud's name is served in clear.
func (r *raw) httpsOffReason(c Config) string {
	where := "on this machine only (" + c.APIAddr + "; set --api-addr to serve them beyond it, in clear)"
	if !isLoopback(c.APIAddr) {
		where = "in clear on " + c.APIAddr + ": passwords and tokens cross the network readable"
	}
	return fmt.Sprintf("HTTPS is off: --api-host %s is an IP address or a single label, for which no ACME CA issues a certificate, "+
		"so the web UI and API are plain HTTP %s; give the cloud a DNS name with --api-host, "+
		"or a certificate with --tls-cert/--tls-key", c.APIHost, where)
}

// validateSharedDomain accepts a DNS name of two labels or more: homes get
// names one label below it, so one wildcard record covers them all. It may
// sit under the cloud's own names (homes.cloud.example.com); those names,
// and any under the shared domain, stay reserved.
func validateSharedDomain(d string) error {
	if domains.IPLiteral(d) != nil || !strings.Contains(d, ".") {
		return fmt.Errorf("%s: give a DNS name with a wildcard record to this cloud, like homes.example.com", proto.Printable(d))
	}
	if err := proto.ValidateHostname(d); err != nil {
		return err
	}
	if len(d) > 253-64 { // room for one label (LABEL-SLUG) and its dot
		return fmt.Errorf("%s is too long to have names under it", d)
	}
	return nil
}

// isLoopback reports whether addr listens on loopback only.
func isLoopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// profileRE is an ACME certificate profile name.
var profileRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

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
