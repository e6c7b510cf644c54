package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"homeport.dev/cloud/internal/config"
)

// TestComposeMatchesTheBinary validates compose.yaml statically (no Docker
// engine runs here): the cloud's command line is accepted by the real flag
// parser, and HAProxy reads exactly the config, maps and socket the cloud
// writes, in the cloud's network namespace.
func TestComposeMatchesTheBinary(t *testing.T) {
	b, err := os.ReadFile("../../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Build       struct{ Context, Dockerfile string } `yaml:"build"`
			Image       string                               `yaml:"image"`
			Command     []string                             `yaml:"command"`
			Ports       []string                             `yaml:"ports"`
			Volumes     []string                             `yaml:"volumes"`
			NetworkMode string                               `yaml:"network_mode"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	cloud, hap := doc.Services["cloud"], doc.Services["haproxy"]
	if len(cloud.Command) == 0 || cloud.Command[0] != "serve" {
		t.Fatalf("cloud command = %v", cloud.Command)
	}
	if _, err := os.Stat(filepath.Join("../../..", cloud.Build.Context, cloud.Build.Dockerfile)); err != nil {
		t.Errorf("cloud's Dockerfile: %v", err)
	}
	vars := regexp.MustCompile(`\$\{[A-Z_]+:\?[^}]*\}`)
	args := make([]string, 0, len(cloud.Command))
	for _, a := range cloud.Command[1:] {
		args = append(args, vars.ReplaceAllString(a, "cloud.example.com"))
	}
	cfg, err := config.Parse(args)
	if err != nil {
		t.Fatalf("cloud serve rejects compose's flags: %v", err)
	}
	if cfg.HAProxy != config.HAProxyExternal {
		t.Errorf("compose runs HAProxy as its own service, so the cloud must use external mode, not %s", cfg.HAProxy)
	}
	if hap.NetworkMode != "service:cloud" {
		t.Errorf("haproxy network_mode = %q: it must share the cloud's namespace to reach 127.0.0.1 tunnel ports", hap.NetworkMode)
	}
	wantCfg := filepath.Join(cfg.HAProxyDir(), "haproxy.cfg")
	if !slices.Contains(hap.Command, wantCfg) {
		t.Errorf("haproxy command %v does not load the rendered %s", hap.Command, wantCfg)
	}
	if !strings.HasPrefix(cfg.HAProxySocketPath(), "/var/lib/homeport/") || !strings.HasPrefix(cfg.HAProxyMapDir(), "/var/lib/homeport/") {
		t.Errorf("socket %s and maps %s must live on the shared volume", cfg.HAProxySocketPath(), cfg.HAProxyMapDir())
	}
	for _, v := range [][]string{cloud.Volumes, hap.Volumes} {
		if !slices.Contains(v, "homeport:/var/lib/homeport") {
			t.Errorf("volumes %v do not share homeport:/var/lib/homeport", v)
		}
	}
	for _, p := range []string{"80:80", "443:443", "8000:8000", "8022:8022", cfg.TCPPorts.String() + ":" + cfg.TCPPorts.String()} {
		if !slices.Contains(cloud.Ports, p) {
			t.Errorf("cloud does not publish %s (ports %v)", p, cloud.Ports)
		}
	}
}

// TestDockerfilesCopyEveryReplacedModule: each image builds its module from
// a copy of the repository that must hold every directory its go.mod
// replaces a module with (proto, the patched x/crypto), or `docker build`
// fails far from here.
func TestDockerfilesCopyEveryReplacedModule(t *testing.T) {
	replace := regexp.MustCompile(`(?m)^replace \S+ => \.\./(\S+)$`)
	for _, mod := range []string{"cloud", "home"} {
		gomod, err := os.ReadFile(filepath.Join("../../..", mod, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		docker, err := os.ReadFile(filepath.Join("../../../deploy", "Dockerfile."+mod))
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
