package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"
)

const example = "../../../examples/home-compose"

// TestHomeComposeExample loads examples/home-compose/compose.yaml with
// compose-go (the loader `docker compose` uses) and feeds the service's
// command, and every `home` command its README tells to run in the
// container, to the real command-line parser of the home binary. The home
// runs unprivileged, its profile is the volume HOME_CONFIG names, and its
// console stays on loopback while it shares the host's network.
func TestHomeComposeExample(t *testing.T) {
	dir, err := filepath.Abs(example)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "compose.yaml")}},
		Environment: map[string]string{},
	}, func(o *loader.Options) { o.SetProjectName("home-compose", true) })
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	s, err := p.GetService("home")
	if err != nil {
		t.Fatal(err)
	}
	if s.User == "" || s.User == "root" || s.User == "0" || strings.HasPrefix(s.User, "0:") {
		t.Errorf("home runs as %q, want a non-root user", s.User)
	}
	if !slices.Equal(s.CapDrop, []string{"ALL"}) || len(s.CapAdd) > 0 {
		t.Errorf("cap_drop %v, cap_add %v: the home needs no capability", s.CapDrop, s.CapAdd)
	}
	if s.NetworkMode != "host" {
		t.Errorf("network_mode %q: the README's --to localhost:PORT means the host only with network_mode: host", s.NetworkMode)
	}
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
			t.Setenv(k, *v)
		}
	}
	profileDir := env["HOME_CONFIG"]
	onVolume := false
	for _, v := range s.Volumes {
		onVolume = onVolume || v.Type == types.VolumeTypeVolume && v.Target == profileDir
	}
	if profileDir == "" || !onVolume {
		t.Errorf("HOME_CONFIG %q must be the mount point of a named volume (the profile outlives the container)", profileDir)
	}
	if b, err := os.ReadFile(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
		t.Error(err)
	} else if !strings.Contains(string(b), "\nUSER "+s.User+"\n") {
		t.Errorf("%s does not run as %s, which owns the profile volume it creates", s.Build.Dockerfile, s.User)
	}

	c := parse(t, s.Command)
	if c.Name() != "console" {
		t.Errorf("service command %v runs %q, want the console", s.Command, c.Name())
	}
	listen := c.Flags().Lookup("listen").Value.String()
	if host, _, err := net.SplitHostPort(listen); err != nil || !net.ParseIP(host).IsLoopback() {
		t.Errorf("console address %q: on the host's network the console must stay on loopback", listen)
	}

	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	run := regexp.MustCompile(`(?m)docker compose (?:run --rm(?: -T)? home|exec home home) (.+)$`)
	cmds := run.FindAllStringSubmatch(string(readme), -1)
	if len(cmds) < 3 {
		t.Fatalf("README.md: %d home commands found", len(cmds))
	}
	for _, m := range cmds {
		parse(t, strings.Fields(m[1]))
	}
}

// parse finds args' subcommand in the home binary's command tree and
// parses its flags and arguments exactly as running it would, without
// running it.
func parse(t *testing.T, args []string) *cobra.Command {
	t.Helper()
	c, rest, err := rootCmd().Find(args)
	if err == nil {
		err = c.ParseFlags(rest)
	}
	if err == nil {
		err = c.ValidateArgs(c.Flags().Args())
	}
	if err == nil {
		err = c.ValidateRequiredFlags()
	}
	if err != nil || !c.Runnable() {
		t.Errorf("home %s: %v (runnable: %v)", strings.Join(args, " "), err, c.Runnable())
	}
	return c
}
