package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/proto"
	"homeport.dev/proto/sysmon"
)

// These tests drive the real `home` binary, as a user would, against a real
// `cloud serve` with its managed HAProxy.

var homeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "home-bin-")
	if err != nil {
		panic(err)
	}
	homeBin = filepath.Join(dir, "home")
	// The static build (no cgo) is the one users get from `make dist`.
	build := exec.Command("go", "build", "-o", homeBin, "homeport.dev/home/cmd/home")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building home: %v\n%s", err, out)
		os.Exit(1)
	}
	code := hometest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// user is a shell of `home` commands with its own profiles directory.
type user struct {
	t        *testing.T
	profiles string
	consoles map[string]int // profile -> pid of its running console
}

func newUser(t *testing.T) *user {
	return &user{t: t, profiles: t.TempDir(), consoles: map[string]int{}}
}

// run runs `home args...` and returns its combined output and error.
func (u *user) run(args ...string) (string, error) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, homeBin, args...)
	cmd.Env = append(os.Environ(), "HOMEPORT_PROFILES="+u.profiles, "HOME_CONFIG=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must runs a command that must succeed.
func (u *user) must(args ...string) string {
	u.t.Helper()
	out, err := u.run(args...)
	if err != nil {
		u.t.Fatalf("home %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// fails runs a command that must fail with a message containing want.
func (u *user) fails(want string, args ...string) string {
	u.t.Helper()
	out, err := u.run(args...)
	if err == nil || !strings.Contains(out, want) {
		u.t.Fatalf("home %s: err=%v, want a failure saying %q; output:\n%s", strings.Join(args, " "), err, want, out)
	}
	return out
}

// console starts `home console` for a profile and returns its address; it
// stops at the end of the test (or when stop is called).
func (u *user) console(profile string) (addr string, stop func()) {
	u.t.Helper()
	cmd := exec.Command(homeBin, "--config", profile, "console", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "HOMEPORT_PROFILES="+u.profiles)
	out, err := cmd.StdoutPipe()
	if err != nil {
		u.t.Fatal(err)
	}
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	if u.consoles != nil {
		u.consoles[profile] = cmd.Process.Pid
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		}
	}
	u.t.Cleanup(func() {
		stop()
		if u.t.Failed() {
			u.t.Logf("console log:\n%s", logs.String())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	m := regexp.MustCompile(`console on http://(\S+),`).FindStringSubmatch(line)
	if err != nil || m == nil {
		u.t.Fatalf("console did not start: %q %v\n%s", line, err, logs.String())
	}
	// It runs itself again with Go's monitor thread kept from deep sleep
	// (proto/sysmon), as the same process.
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid)); err != nil || !bytes.Contains(env, []byte(sysmon.Setting)) {
		u.t.Errorf("home console runs without %s in GODEBUG (%v)", sysmon.Setting, err)
	}
	if name, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); err != nil || string(name) != "home\n" {
		u.t.Errorf("home console is named %q after running again, want home (%v)", name, err)
	}
	go io.Copy(io.Discard, out)
	return m[1], stop
}

// waitUp waits until every forward of the profile is up (a readiness
// signal: the console's own status), bounded in time.
func (u *user) waitUp(profile string, want int) control.Status {
	u.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := u.run("--config", profile, "status", "--json")
		var st control.Status
		if err == nil && json.Unmarshal([]byte(out), &st) == nil {
			up := 0
			for _, f := range st.Forwards {
				if f.Up {
					up++
				}
			}
			if up == want {
				return st
			}
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("forwards not up within 15s: %s %v", out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// web starts a local HTTP service that names itself.
func web(t *testing.T, name string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s xff=%s", name, r.Header.Get("X-Forwarded-For"))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// visit requests host through the cloud's public HTTP port.
func visit(t *testing.T, c *hometest.Cloud, host string) (string, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+c.HTTPAddr+"/", nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), nil
}

func register(u *user, c *hometest.Cloud, token, dir string) string {
	u.t.Helper()
	out := u.must("register", "--cloud", c.APIURL, "--token", token, "--output", dir)
	if !strings.Contains(out, "registered home") || !strings.Contains(out, "next:") {
		u.t.Errorf("register printed no summary: %s", out)
	}
	return dir
}

func TestRegisterExposeAndMoveTheProfile(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	alice := c.CreateUser(t, "alice")
	u := newUser(t)
	profile := register(u, c, alice.Token, filepath.Join(t.TempDir(), "p"))
	u.must("--config", profile, "domains", "add", "example.com")
	u.must("--config", profile, "expose", "http", "web.example.com", "--to", web(t, "alice-web"))

	_, stop := u.console(profile)
	u.waitUp(profile, 1)
	if got, err := visit(t, c, "web.example.com"); err != nil || !strings.HasPrefix(got, "alice-web xff=127.0.0.1") {
		t.Fatalf("through the cloud: %q %v", got, err)
	}
	stop()

	// Portability: the profile directory moves and keeps working.
	moved := filepath.Join(t.TempDir(), "elsewhere", "profile")
	os.MkdirAll(filepath.Dir(moved), 0o700)
	if err := os.Rename(profile, moved); err != nil {
		t.Fatal(err)
	}
	u.console(moved)
	u.waitUp(moved, 1)
	if got, err := visit(t, c, "web.example.com"); err != nil || !strings.HasPrefix(got, "alice-web") {
		t.Fatalf("after moving the profile: %q %v", got, err)
	}
	// sync-tunnels is idempotent and says so.
	if out := u.must("--config", moved, "sync-tunnels"); !strings.Contains(out, "kept") || !strings.Contains(out, "in sync") || strings.Contains(out, "created") {
		t.Errorf("second sync changed something: %s", out)
	}
}

func TestTwoProfilesAgainstTwoClouds(t *testing.T) {
	c1 := hometest.Start(t, hometest.Options{})
	c2 := hometest.Start(t, hometest.Options{})
	u := newUser(t)
	p1 := register(u, c1, c1.CreateUser(t, "alice").Token, filepath.Join(t.TempDir(), "one"))
	p2 := register(u, c2, c2.CreateUser(t, "alice").Token, filepath.Join(t.TempDir(), "two"))
	for _, p := range []struct{ profile, name string }{{p1, "one"}, {p2, "two"}} {
		u.must("--config", p.profile, "domains", "add", p.name+".example.com")
		u.must("--config", p.profile, "expose", "http", "www."+p.name+".example.com", "--to", web(t, "svc-"+p.name))
		u.console(p.profile)
	}
	u.waitUp(p1, 1)
	u.waitUp(p2, 1)
	if got, err := visit(t, c1, "www.one.example.com"); err != nil || !strings.HasPrefix(got, "svc-one") {
		t.Errorf("cloud one: %q %v", got, err)
	}
	if got, err := visit(t, c2, "www.two.example.com"); err != nil || !strings.HasPrefix(got, "svc-two") {
		t.Errorf("cloud two: %q %v", got, err)
	}
	// With two profiles and no --config, the CLI asks which one.
	u2 := &user{t: t, profiles: t.TempDir()}
	register(u2, c1, c1.CreateUser(t, "bob").Token, filepath.Join(u2.profiles, "a"))
	register(u2, c2, c2.CreateUser(t, "bob").Token, filepath.Join(u2.profiles, "b"))
	u2.fails("several profiles exist", "status")
	// Side by side, each profile gets its own console port.
	a, _ := os.ReadFile(filepath.Join(u2.profiles, "a", "config.yaml"))
	b, _ := os.ReadFile(filepath.Join(u2.profiles, "b", "config.yaml"))
	listen := regexp.MustCompile(`listen: (\S+)`)
	if la, lb := listen.FindSubmatch(a), listen.FindSubmatch(b); la == nil || lb == nil || string(la[1]) == string(lb[1]) {
		t.Errorf("two profiles share a console address: %q / %q", la, lb)
	}
}

func TestBadInputsChangeNothing(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	alice := c.CreateUser(t, "alice")
	u := newUser(t)
	homes := func() int {
		var hs []proto.Home
		c.Do(t, alice.Token, "GET", "/api/v1/homes", nil, &hs)
		return len(hs)
	}
	dir := filepath.Join(t.TempDir(), "p")
	u.fails("rejected the token", "register", "--cloud", c.APIURL, "--token", "hp_wrong", "--output", dir)
	u.fails("cannot reach the cloud", "register", "--cloud", "http://127.0.0.1:1", "--token", alice.Token, "--output", dir)
	u.fails("must look like", "register", "--cloud", "ftp://x", "--token", alice.Token, "--output", dir)
	if _, err := os.Stat(dir); err == nil || homes() != 0 {
		t.Fatalf("failed registrations left a profile (%v) or a home (%d)", err, homes())
	}
	profile := register(u, c, alice.Token, dir)
	u.fails("not empty", "register", "--cloud", c.APIURL, "--token", alice.Token, "--output", dir)
	if homes() != 1 {
		t.Errorf("refusing to overwrite a profile still claimed a home")
	}
	u.must("--config", profile, "domains", "add", "example.com")
	// A forward to a LAN host without the feature flag: refused, nothing mapped.
	u.fails("lan_forwarding", "--config", profile, "expose", "tcp", "10000", "--to", "192.168.1.20:22")
	u.fails("not in this home's range", "--config", profile, "expose", "tcp", "9", "--to", "localhost:22")
	u.fails("not under any base domain", "--config", profile, "expose", "https", "x.other.org", "--to", "localhost:443")
	var ms []proto.Mapping
	var h proto.Home
	c.Do(t, alice.Token, "GET", "/api/v1/homes", nil, &[]*proto.Home{&h})
	c.Do(t, alice.Token, "GET", "/api/v1/homes/"+h.Slug+"/mappings", nil, &ms)
	if out := u.must("--config", profile, "forwards", "list"); len(ms) != 0 || strings.Count(out, "\n") != 1 {
		t.Errorf("refused exposes left mappings %v or entries:\n%s", ms, out)
	}
	// A malformed config: a clear message naming the field.
	cfgPath := filepath.Join(profile, "config.yaml")
	good, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(strings.Replace(string(good), "port: ", "port: 99999 #", 1)), 0o600)
	u.fails("cloud.ssh.port", "--config", profile, "status")
	os.WriteFile(cfgPath, good, 0o600)

	// Host key mismatch: the console refuses to connect and says why.
	mismatched := strings.Replace(string(good), "host_key: ", "host_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvGW3Ju0VYnT6o4xBDpVZb5hCuoE4oSy6QOOy0Jy5Yo #", 1)
	os.WriteFile(cfgPath, []byte(mismatched), 0o600)
	u.must("--config", profile, "expose", "http", "web.example.com", "--to", web(t, "w"))
	u.console(profile)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := u.run("--config", profile, "status", "--json")
		var st control.Status
		json.Unmarshal([]byte(out), &st)
		if strings.Contains(st.Tunnel.LastError, "host key mismatch") {
			if st.Tunnel.State == "connected" || len(st.Forwards) != 1 || st.Forwards[0].Up {
				t.Errorf("connected with a mismatched host key: %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never reported the host key mismatch:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A home whose key the cloud no longer has: commands say the cloud
	// refuses it.
	other := filepath.Join(t.TempDir(), "other")
	u.must("keygen", "--output", other)
	pub, _ := os.ReadFile(other + ".pub")
	line := strings.TrimSpace(string(pub))
	if st := c.Do(t, alice.Token, "PATCH", "/api/v1/homes/"+h.Slug, proto.PatchHomeRequest{PublicKey: &line}, nil); st != http.StatusOK {
		t.Fatalf("replacing the home's key: %d", st)
	}
	u.fails("401", "--config", profile, "domains", "list")
}
