package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/pflag"

	"homeport.dev/cloud/internal/budget"
	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/serve"
)

const repoRoot = "../../.."

// loadCompose reads compose.yaml with compose-go, the loader `docker
// compose` itself uses (interpolation, anchors, validation against the
// compose schema), with env as the shell environment.
func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "compose.yaml")}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("homeport", true) })
}

// TestComposeMatchesTheBinary validates compose.yaml statically (no
// container engine in make test; deploy/smoke.sh runs it with one): the
// cloud's settings are accepted by the real `cloud serve` parser, the
// published ports are exactly the public ones, every service is non-root
// with only the capabilities it needs, and HAProxy shares a network
// namespace with the cloud that survives a restart of the cloud.
func TestComposeMatchesTheBinary(t *testing.T) {
	if _, err := loadCompose(t, map[string]string{}); err == nil || !strings.Contains(err.Error(), "HOMEPORT_PUBLIC_HOST") {
		t.Errorf("compose.yaml without HOMEPORT_PUBLIC_HOST: %v, want an error naming it", err)
	}
	p, err := loadCompose(t, map[string]string{"HOMEPORT_PUBLIC_HOST": "cloud.example.com", "HOMEPORT_ACME_EMAIL": "admin@example.com"})
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	cloud, hap := service(t, p, "cloud"), service(t, p, "haproxy")
	cfg := cloudConfig(t, cloud, nil)
	if cfg.HAProxy != config.HAProxyExternal {
		t.Errorf("compose runs HAProxy as its own service, so the cloud must use external mode, not %s", cfg.HAProxy)
	}
	if !cfg.TLS.On() || cfg.APIHost != "cloud.example.com" {
		t.Errorf("the cloud's own name must be served over HTTPS (mode %q, api host %q)", cfg.TLS.Mode, cfg.APIHost)
	}
	if !isLoopback(cfg.APIAddr) || !isLoopback(cfg.MetricsAddr) {
		t.Errorf("plain API %s and metrics %s must listen on loopback only", cfg.APIAddr, cfg.MetricsAddr)
	}

	// One shared namespace, owned by neither the cloud nor HAProxy.
	if cloud.NetworkMode == "" || cloud.NetworkMode != hap.NetworkMode {
		t.Fatalf("cloud (%q) and haproxy (%q) must share one network namespace: HAProxy reaches tunnel ports and the cloud's TLS listener on 127.0.0.1", cloud.NetworkMode, hap.NetworkMode)
	}
	ownerName, ok := strings.CutPrefix(cloud.NetworkMode, types.NetworkModeServicePrefix)
	if !ok || ownerName == "cloud" || ownerName == "haproxy" {
		t.Fatalf("network_mode %q: the namespace must belong to a service that does not restart with the cloud", cloud.NetworkMode)
	}
	owner := service(t, p, ownerName)
	if owner.NetworkMode != "" {
		t.Errorf("%s must own its namespace, not join %q", ownerName, owner.NetworkMode)
	}
	if owner.Sysctls["net.ipv4.ip_unprivileged_port_start"] != "0" {
		t.Errorf("%s: non-root HAProxy binds 80 and 443 only with net.ipv4.ip_unprivileged_port_start=0", ownerName)
	}

	// Published: the public ports; never the plain API or metrics.
	published := map[int]bool{}
	for _, s := range p.Services {
		if s.Name != ownerName && len(s.Ports) > 0 {
			t.Errorf("%s publishes ports; only %s, which owns the namespace, can", s.Name, ownerName)
		}
	}
	for _, port := range owner.Ports {
		if port.Published != strconv.Itoa(int(port.Target)) {
			t.Errorf("port %d is published as %s: the cloud tells homes and visitors its own port numbers", port.Target, port.Published)
		}
		published[int(port.Target)] = true
	}
	want := []int{port(t, cfg.HTTPAddr), port(t, cfg.HTTPSAddr), cfg.SSHPort()}
	for n := cfg.TCPPorts.First; n <= cfg.TCPPorts.Last; n++ {
		want = append(want, n)
	}
	for _, n := range want {
		if !published[n] {
			t.Errorf("port %d is not published", n)
		}
		delete(published, n)
	}
	for n := range published {
		t.Errorf("port %d is published but is not a public port of the cloud", n)
	}
	for _, addr := range []string{cfg.APIAddr, cfg.MetricsAddr} {
		if owner.Ports != nil && slices.ContainsFunc(owner.Ports, func(pc types.ServicePortConfig) bool { return int(pc.Target) == port(t, addr) }) {
			t.Errorf("%s is published", addr)
		}
	}

	// Non-root everywhere, only the capabilities each needs.
	for _, s := range p.Services {
		if s.User == "" || s.User == "root" || strings.HasPrefix(s.User, "0:") || s.User == "0" {
			t.Errorf("%s runs as %q: every service runs as a non-root user", s.Name, s.User)
		}
		if !slices.Equal(s.CapDrop, []string{"ALL"}) {
			t.Errorf("%s: cap_drop %v, want [ALL]", s.Name, s.CapDrop)
		}
		wantAdd := []string(nil)
		if s.Name == "cloud" {
			wantAdd = []string{"NET_ADMIN"} // tc bandwidth limits; it binds no port below 1024
		}
		if !slices.Equal(s.CapAdd, wantAdd) {
			t.Errorf("%s: cap_add %v, want %v", s.Name, s.CapAdd, wantAdd)
		}
	}
	if cloud.User != hap.User {
		t.Errorf("cloud (%s) and haproxy (%s) share the 0700 volume and HAProxy's owner-only socket: same user", cloud.User, hap.User)
	}
	if slices.Contains(cloud.SecurityOpt, "no-new-privileges:true") {
		t.Error("no-new-privileges on the cloud would drop its file capability (tc limits)")
	}

	// HAProxy reads what the cloud writes, on the same volume.
	if i := slices.Index(hap.Command, "-f"); i < 0 || i+1 >= len(hap.Command) || hap.Command[i+1] != filepath.Join(cfg.HAProxyDir(), "haproxy.cfg") {
		t.Errorf("haproxy command %v does not load the rendered %s", hap.Command, filepath.Join(cfg.HAProxyDir(), "haproxy.cfg"))
	}
	for _, path := range []string{cfg.Data, cfg.HAProxySocketPath(), cfg.HAProxyMapDir()} {
		for _, s := range []types.ServiceConfig{cloud, hap} {
			if !onVolume(s, "homeport", path) {
				t.Errorf("%s is not on the homeport volume in %s", path, s.Name)
			}
		}
	}
	if hc := cloud.HealthCheck; hc == nil || len(hc.Test) < 3 || hc.Test[0] != "CMD" || hc.Test[1] != "cloud" {
		t.Errorf("cloud healthcheck %v: want [CMD cloud check ...]", cloud.HealthCheck)
	}
	if d, ok := hap.DependsOn["cloud"]; !ok || d.Condition != types.ServiceConditionHealthy {
		t.Errorf("haproxy must wait until the cloud is healthy (it renders haproxy.cfg): depends_on %v", hap.DependsOn)
	}
	for _, s := range p.Services {
		if s.Build == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
			t.Errorf("%s's Dockerfile: %v", s.Name, err)
		}
	}
}

// TestComposeHealthcheckPassesOnAFreshVolume: the cloud starts on a fresh
// volume (a directory that exists, 0755, empty) and the healthcheck command
// of compose.yaml, run as `docker compose` would run it in the container,
// then succeeds, so HAProxy (waiting for a healthy cloud) starts.
func TestComposeHealthcheckPassesOnAFreshVolume(t *testing.T) {
	p, err := loadCompose(t, map[string]string{"HOMEPORT_PUBLIC_HOST": "cloud.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	cloud := service(t, p, "cloud")
	volume := filepath.Join(t.TempDir(), "homeport")
	if err := os.Mkdir(volume, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(volume, 0o755); err != nil {
		t.Fatal(err)
	}
	onTestVolume := func(v string) string { return strings.ReplaceAll(v, "/var/lib/homeport", volume) }
	cfg := cloudConfig(t, cloud, onTestVolume)
	app, err := serve.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("the cloud does not start on a fresh volume: %v", err)
	}
	app.Close()

	hc := cloud.HealthCheck.Test
	args := make([]string, 0, len(hc))
	for _, a := range hc[2:] {
		args = append(args, onTestVolume(a))
	}
	cmd := root()
	cmd.SetArgs(args)
	var out strings.Builder
	cmd.SetOut(&out)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("healthcheck %v fails on a fresh volume: %v\n%s", hc, err, out.String())
	}
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return s
}

// cloudConfig feeds the cloud service's environment and command to the real
// `cloud serve` parser. Every CLOUD_* variable must name a flag: the parser
// would ignore a misspelt one. rewrite, if set, changes each value.
func cloudConfig(t *testing.T, s types.ServiceConfig, rewrite func(string) string) config.Config {
	t.Helper()
	if len(s.Command) == 0 || s.Command[0] != "serve" {
		t.Fatalf("cloud command = %v, want serve ...", s.Command)
	}
	flags := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.Flags(flags)
	for k, v := range s.Environment {
		name, ok := strings.CutPrefix(k, "CLOUD_")
		if !ok {
			continue
		}
		if flags.Lookup(strings.ToLower(strings.ReplaceAll(name, "_", "-"))) == nil {
			t.Errorf("compose sets %s, but `cloud serve` has no flag --%s", k, strings.ToLower(strings.ReplaceAll(name, "_", "-")))
		}
		val := ""
		if v != nil {
			val = *v
		}
		if rewrite != nil {
			val = rewrite(val)
		}
		t.Setenv(k, val)
	}
	args := slices.Clone(s.Command[1:])
	if rewrite != nil {
		for i := range args {
			args[i] = rewrite(args[i])
		}
	}
	cfg, err := config.Parse(args)
	if err != nil {
		t.Fatalf("cloud serve rejects compose's settings: %v", err)
	}
	return cfg
}

// onVolume reports whether path sits on the named volume in s.
func onVolume(s types.ServiceConfig, volume, path string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == volume && (path == v.Target || strings.HasPrefix(path, v.Target+"/")) {
			return true
		}
	}
	return false
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("address %q", addr)
	}
	return n
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return err == nil && (host == "localhost" || ip != nil && ip.IsLoopback())
}

// TestDockerfilesCopyEveryReplacedModule: each image builds its module from
// a copy of the repository that must hold every directory its go.mod
// replaces a module with (proto, the patched x/crypto), or `docker build`
// fails far from here.
func TestDockerfilesCopyEveryReplacedModule(t *testing.T) {
	replace := regexp.MustCompile(`(?m)^replace \S+ => \.\./(\S+)$`)
	for _, mod := range []string{"cloud", "home"} {
		gomod, err := os.ReadFile(filepath.Join(repoRoot, mod, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		docker, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "Dockerfile."+mod))
		if err != nil {
			t.Fatal(err)
		}
		dirs := replace.FindAllStringSubmatch(string(gomod), -1)
		if len(dirs) == 0 {
			t.Fatalf("%s/go.mod: no replace directive found", mod)
		}
		for _, m := range dirs {
			top := strings.SplitN(m[1], "/", 2)[0]
			if !strings.Contains(string(docker), "\nCOPY "+top+"/ "+top+"/\n") {
				t.Errorf("deploy/Dockerfile.%s does not COPY %s/, which %s/go.mod replaces a module with", mod, top, mod)
			}
		}
	}
}

// TestSystemdEnvironmentFile: every setting deploy/systemd/cloud.env shows
// (commented examples too) is a `cloud serve` flag, and the file as shipped
// is accepted by the real parser with the data directory the unit's
// StateDirectory makes.
func TestSystemdEnvironmentFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "systemd", "cloud.env"))
	if err != nil {
		t.Fatal(err)
	}
	flags := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.Flags(flags)
	setting := regexp.MustCompile(`^#?(CLOUD_[A-Z0-9_]+)=(.*)$`)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		m := setting.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		n++
		flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(m[1], "CLOUD_"), "_", "-"))
		if flags.Lookup(flag) == nil {
			t.Errorf("cloud.env: %s names no flag (--%s)", m[1], flag)
		}
		if !strings.HasPrefix(line, "#") {
			t.Setenv(m[1], m[2])
		}
	}
	if n == 0 {
		t.Fatal("cloud.env: no CLOUD_ setting found")
	}
	cfg, err := config.Parse(nil)
	if err != nil {
		t.Fatalf("cloud serve rejects cloud.env: %v", err)
	}
	if cfg.Data != "/var/lib/homeport" {
		t.Errorf("CLOUD_DATA=%s, but the unit's StateDirectory is /var/lib/homeport", cfg.Data)
	}
}

// TestShippedFileLimitsHoldAThousandHomes: the open-files limit that
// compose.yaml and the systemd unit give the cloud holds 1,000 homes at the
// default budgets, with the reserve the cloud keeps for itself.
func TestShippedFileLimitsHoldAThousandHomes(t *testing.T) {
	const homes = 1000
	cfg, err := config.Parse([]string{"--home-slots", "1000", "--tcp-block", "0"})
	if err != nil {
		t.Fatal(err)
	}
	need := homes * cfg.Limits.ChannelsPerHome
	holds := func(what string, limit uint64) {
		t.Helper()
		if got := budget.EdgeShare(limit, homes, cfg.Layout.TunnelBlock, cfg.Limits.PendingPerHome, cfg.Limits.ConnsPerIP); got < need {
			t.Errorf("%s: %d open files leave %d channels for tunnels; 1,000 homes at their limit need %d", what, limit, got, need)
		}
	}
	p, err := loadCompose(t, map[string]string{"HOMEPORT_PUBLIC_HOST": "cloud.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cloud", "haproxy"} {
		s := service(t, p, name)
		n := s.Ulimits["nofile"]
		if n == nil {
			t.Errorf("compose.yaml: %s has no ulimits.nofile", name)
			continue
		}
		holds("compose.yaml "+name, uint64(max(n.Soft, n.Hard, n.Single)))
	}
	unit, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "systemd", "homeport-cloud.service"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^LimitNOFILE=(\d+)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("homeport-cloud.service sets no LimitNOFILE")
	}
	n, _ := strconv.ParseUint(string(m[1]), 10, 64)
	holds("homeport-cloud.service", n)
}
