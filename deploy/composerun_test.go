package deploy

import (
	"cmp"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"homeport.dev/proto/testnet"
)

// TestComposeRunMatchesCompose: the `podman run` arguments deploy/smoke.sh
// runs the stack with where no compose implementation can (compose-run.py)
// say what compose-go, the reference loader, reads in compose.yaml: image,
// user, capabilities, sysctl, ports, environment (interpolated), volumes,
// the shared namespace, entrypoint and command. A setting added to
// compose.yaml that the script does not translate fails here, not in a
// smoke run that cannot happen on the test machine.
func TestComposeRunMatchesCompose(t *testing.T) {
	py := testnet.RequireCommand(t, "python3", "apt-get install python3 python3-yaml")
	if exec.Command(py, "-c", "import yaml").Run() != nil {
		testnet.Missing(t, "python3's yaml module is not installed: apt-get install python3-yaml")
	}
	p := loadProject(t)
	root := repoRoot(t)
	for _, s := range p.Services {
		cmd := exec.Command(py, filepath.Join(root, "deploy", "compose-run.py"), "homeport", s.Name, filepath.Join(root, "compose.yaml"))
		cmd.Env = append(cmd.Environ(), "HOMEPORT_PUBLIC_HOST="+stackHost)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("compose-run.py %s: %v\n%s", s.Name, err, out)
		}
		args := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		has := func(flag, value string) {
			t.Helper()
			for i := 0; i+1 < len(args); i++ {
				if args[i] == flag && args[i+1] == value {
					return
				}
			}
			t.Errorf("%s: no %s %s in %q", s.Name, flag, value, args)
		}
		has("--user", s.User)
		for _, c := range s.CapDrop {
			has("--cap-drop", c)
		}
		for _, c := range s.CapAdd {
			has("--cap-add", c)
		}
		for k, v := range s.Sysctls {
			has("--sysctl", k+"="+v)
		}
		for k, v := range s.Environment {
			val := ""
			if v != nil {
				val = *v
			}
			has("--env", k+"="+val)
		}
		for _, v := range s.Volumes {
			has("--volume", "homeport_"+v.Source+":"+v.Target)
		}
		if n, ok := strings.CutPrefix(s.NetworkMode, "service:"); ok {
			has("--network", "container:homeport-"+n)
		}
		if s.ReadOnly != slices.Contains(args, "--read-only") {
			t.Errorf("%s: read_only %v, arguments %q", s.Name, s.ReadOnly, args)
		}
		var published []string // host:container, one a port as compose-go lists them
		for i, a := range args[:len(args)-1] {
			if a != "--publish" {
				continue
			}
			host, ctr, _ := strings.Cut(args[i+1], ":")
			h0, h1, _ := strings.Cut(host, "-")
			c0, _, _ := strings.Cut(ctr, "-")
			lo, _ := strconv.Atoi(h0)
			hi, _ := strconv.Atoi(cmp.Or(h1, h0))
			c, _ := strconv.Atoi(c0)
			for port := lo; port <= hi; port++ {
				published = append(published, fmt.Sprintf("%d:%d", port, c+port-lo))
			}
		}
		var ports []string
		for _, pc := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d", pc.Published, pc.Target))
		}
		if !slices.Equal(published, ports) {
			t.Errorf("%s publishes %q, compose.yaml %q", s.Name, published, ports)
		}
		i := slices.Index(args, s.Image)
		if i < 0 {
			t.Fatalf("%s: image %s not in %q", s.Name, s.Image, args)
		}
		want := append(slices.Clone(s.Entrypoint), s.Command...)
		got := args[i+1:]
		if len(s.Entrypoint) > 0 {
			has("--entrypoint", s.Entrypoint[0])
			got = append([]string{s.Entrypoint[0]}, got...)
		}
		if !slices.Equal(got, []string(want)) {
			t.Errorf("%s runs %q, compose.yaml %q", s.Name, got, want)
		}
	}
}
