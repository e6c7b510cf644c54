package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"homeport.dev/proto/testnet"
)

// maxExposure is the `systemd-analyze security` rating the units must stay
// at or under (0 = fully sandboxed, 10 = not at all; under 3.0 is "OK").
const maxExposure = 3.0

// unit is a unit file of deploy/systemd and how systemd runs it.
type unit struct {
	file string // in deploy/systemd
	as   string // the name it is installed under (a template's instance)
	user bool   // a user unit (systemctl --user)
	bin  string // the binary ExecStart runs
}

var units = []unit{
	{file: "homeport-cloud.service", as: "homeport-cloud.service", bin: "/usr/local/bin/cloud"},
	{file: "homeport-home@.service", as: "homeport-home@cloud.example.com.service", user: true, bin: "/usr/local/bin/home"},
}

// TestSystemdUnits runs `systemd-analyze verify` on each unit (syntax,
// directives this systemd knows, an executable ExecStart) and `security`
// (the sandbox's exposure rating, at most maxExposure), and checks that
// the home's unit is a user unit throughout and the cloud's takes its
// settings from the environment file `cloud users` and `cloud backup` read
// too.
func TestSystemdUnits(t *testing.T) {
	analyze := testnet.RequireCommand(t, "systemd-analyze", "apt-get install systemd (deploy/install-deps.sh does)")
	exe, err := os.Executable() // stands in for the binaries: verify checks only that ExecStart is executable
	if err != nil {
		t.Fatal(err)
	}
	runtime := t.TempDir() // a user manager's XDG_RUNTIME_DIR, for --user
	exposure := regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`)
	for _, u := range units {
		t.Run(u.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "systemd", u.file))
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			if !strings.Contains(text, "ExecStart="+u.bin+" ") {
				t.Fatalf("ExecStart does not run %s", u.bin)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, u.as)
			if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, u.bin, exe)), 0o644); err != nil {
				t.Fatal(err)
			}
			mode := []string{}
			if u.user {
				mode = []string{"--user"}
			}
			run := func(args ...string) (string, error) {
				cmd := exec.Command(analyze, append(mode, args...)...)
				cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtime, "SYSTEMD_LOG_COLOR=0")
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			if out, err := run("verify", path); err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("systemd-analyze verify %s: %v\n%s", u.file, err, out)
			}
			out, err := run("security", "--offline=yes", path)
			m := exposure.FindStringSubmatch(out)
			if err != nil || m == nil {
				t.Fatalf("systemd-analyze security %s: %v\n%s", u.file, err, out)
			}
			level, _ := strconv.ParseFloat(m[1], 64)
			t.Logf("systemd-analyze security %s: exposure %.1f", u.file, level)
			if level > maxExposure {
				t.Errorf("%s: exposure %.1f, want at most %.1f:\n%s", u.file, level, maxExposure, out)
			}
			if u.user {
				for _, bad := range []string{"User=", "Group=", "DynamicUser=", "multi-user.target"} {
					if strings.Contains(text, "\n"+bad) || strings.Contains(text, "WantedBy="+bad) {
						t.Errorf("a user unit must not use %s (it runs as the user whose manager starts it)", bad)
					}
				}
				for _, want := range []string{"WantedBy=default.target", "%h/", "systemctl --user"} {
					if !strings.Contains(text, want) {
						t.Errorf("a user unit is installed and run as the user: %q missing", want)
					}
				}
			} else if !strings.Contains(text, "\nEnvironmentFile=/etc/homeport/cloud.env\n") {
				t.Error("the cloud unit must read /etc/homeport/cloud.env, which the admin commands source too")
			}
		})
	}
}
