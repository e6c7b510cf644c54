package deploy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"homeport.dev/proto/testnet"
)

const unitEnv = "HOMEPORT_TEST_SYSTEMD_UNIT" // the binaries' directory, in the child

// dynamicUID stands for the user DynamicUser= allocates.
const dynamicUID = 61234

// capabilities by name, for AmbientCapabilities=.
var capabilities = map[string]uintptr{"CAP_NET_BIND_SERVICE": 10, "CAP_NET_ADMIN": 12}

// TestSystemdCloudUnitAsItsProcess runs homeport-cloud.service the way
// systemd would, as far as a test can without systemd: ExecStart as an
// unprivileged user with exactly the unit's ambient capabilities and umask,
// the environment file as shipped (with the test's name and certificate),
// its StateDirectory, in a network namespace where ports below 1024 need
// CAP_NET_BIND_SERVICE. The cloud's managed HAProxy must bind 80 and 443
// with the capability it inherits, the cloud must shape (NET_ADMIN) and
// serve its name over HTTPS; then the README's admin commands, run as root
// with the environment file sourced, work on the live data directory and
// leave it usable by the service.
func TestSystemdCloudUnitAsItsProcess(t *testing.T) {
	bin := os.Getenv(unitEnv)
	if bin == "" {
		testnet.RequireRoot(t, "runs the cloud as another user in a network and mount namespace of its own")
		testnet.RequireCommand(t, "haproxy", "apt-get install haproxy (deploy/install-deps.sh does)")
		inNamespaces(t, unitEnv)
		return
	}
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	privateHosts(t, base)
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); strings.TrimSpace(string(b)) != "1024" {
		t.Fatalf("ip_unprivileged_port_start is %s in a new namespace, want 1024", b)
	}
	roots := writeCerts(t, filepath.Join(base, "tls"))
	svc := unitService(t, "homeport-cloud.service")

	// StateDirectory=, made by systemd for the service's user.
	state := filepath.Join(base, svc["StateDirectory"])
	mode, err := strconv.ParseUint(svc["StateDirectoryMode"], 8, 32)
	if err != nil {
		t.Fatalf("StateDirectoryMode=%s", svc["StateDirectoryMode"])
	}
	if err := os.Mkdir(state, os.FileMode(mode)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, dynamicUID, dynamicUID); err != nil {
		t.Fatal(err)
	}

	// EnvironmentFile=, as shipped, on this machine's paths and name.
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	for k, v := range envFile(t, filepath.Join(repoRoot(t), "deploy", "systemd", "cloud.env")) {
		switch k {
		case "CLOUD_DATA":
			if v != "/var/lib/"+svc["StateDirectory"] {
				t.Errorf("CLOUD_DATA=%s, but StateDirectory=%s", v, svc["StateDirectory"])
			}
			v = state
		case "CLOUD_PUBLIC_HOST":
			v = stackHost
		}
		env = append(env, k+"="+v)
	}
	env = append(env, "CLOUD_TLS_CERT="+filepath.Join(base, "tls", "cert.pem"), "CLOUD_TLS_KEY="+filepath.Join(base, "tls", "key.pem"))

	var caps []uintptr
	for _, name := range strings.Fields(svc["AmbientCapabilities"]) {
		c, ok := capabilities[name]
		if !ok {
			t.Fatalf("AmbientCapabilities: %s is not one this test knows", name)
		}
		caps = append(caps, c)
	}
	umask, err := strconv.ParseUint(svc["UMask"], 8, 32)
	if err != nil {
		t.Fatalf("UMask=%s", svc["UMask"])
	}
	syscall.Umask(int(umask)) // this process only exists to run the unit

	exec0 := strings.Fields(svc["ExecStart"])
	cmd := exec.Command(filepath.Join(bin, filepath.Base(exec0[0])), exec0[1:]...)
	cmd.Env = env
	log, err := os.Create(filepath.Join(base, "cloud.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: dynamicUID, Gid: dynamicUID, NoSetGroups: true},
		AmbientCaps: caps,
		Pdeathsig:   syscall.SIGKILL,
	}
	exited := startUntilCleanup(t, cmd, 30*time.Second, func() {
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("cloud log:\n%s", b)
		}
	})

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig(roots)}}
	var last string
	ready := false
	for range 60 {
		resp, err := client.Get("https://" + stackHost + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = resp.Status + " " + string(b)
			if resp.StatusCode == 200 {
				ready = true
				break
			}
		} else {
			last = err.Error()
		}
		select {
		case <-exited:
			t.Fatal("the cloud exited")
		case <-time.After(500 * time.Millisecond):
		}
	}
	if !ready {
		t.Fatalf("https://%s/readyz through the managed HAProxy on :443: %s", stackHost, last)
	}
	if !strings.Contains(last, "shaper") || strings.Contains(last, "unavailable") {
		t.Errorf("/readyz %s: bandwidth shaping must be available with CAP_NET_ADMIN", last)
	}

	// The README's admin commands: root, the environment file sourced.
	admin := func(stdin string, args ...string) string {
		t.Helper()
		c := exec.Command(filepath.Join(bin, "cloud"), args...)
		c.Env = env
		c.Stdin = strings.NewReader(stdin)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("cloud %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	admin("unit test passphrase\n", "users", "create", "admin", "--email", "admin@example.com", "--admin")
	admin("", "check")
	backup := filepath.Join(base, "backup.db")
	admin("", "backup", "--output", backup)
	if st, err := os.Stat(backup); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("backup: %v, mode %v", err, st.Mode())
	}
	// The service still writes its database after root's commands.
	resp, err := client.Post("https://"+stackHost+"/api/v1/auth/token", "application/json",
		strings.NewReader(`{"username":"admin","password":"unit test passphrase","name":"unit"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 201 || tok.Token == "" {
		t.Errorf("a token over HTTPS after the admin commands: %s", resp.Status)
	}
	entries, _ := os.ReadDir(state)
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue
		}
		if st := info.Sys().(*syscall.Stat_t); st.Uid != dynamicUID {
			t.Errorf("%s is owned by uid %d after the admin commands, not the service's user", e.Name(), st.Uid)
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %o: UMask=0077 and the cloud keep everything owner-only", e.Name(), info.Mode().Perm())
		}
	}
}

// unitService returns the [Service] settings of a unit in deploy/systemd.
func unitService(t *testing.T, name string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "deploy", "systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			if prev, ok := out[k]; ok && v != "" {
				v = prev + " " + v
			}
			out[k] = v
		}
	}
	for _, k := range []string{"ExecStart", "StateDirectory", "StateDirectoryMode", "AmbientCapabilities", "UMask", "EnvironmentFile"} {
		if out[k] == "" {
			t.Fatalf("%s: no %s=", name, k)
		}
	}
	return out
}

// envFile reads a systemd EnvironmentFile (KEY=VALUE lines, # comments).
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", path, line)
		}
		out[k] = v
	}
	if len(out) == 0 {
		t.Fatalf("%s: no settings", path)
	}
	return out
}

func tlsConfig(roots *x509.CertPool) *tls.Config { return &tls.Config{RootCAs: roots} }
