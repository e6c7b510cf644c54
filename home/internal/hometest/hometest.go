// Package hometest runs a real cloud for the home's end-to-end tests: the
// `cloud` binary built from this workspace, with its managed HAProxy, on
// loopback ports that were free, driven through its CLI and REST API the way
// a user would. A test can kill -9 the cloud and start it again on the same
// data directory and ports.
//
// The binary is built once per test binary; call Main from TestMain so that
// it is removed afterwards.
package hometest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"

	"homeport.dev/proto"
	"homeport.dev/proto/testnet"
)

// build is the cloud binary shared by the tests of one test binary: the one
// piece of package state, because building once per test would dominate
// the run time.
var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// Main runs the tests and removes the cloud binary built for them:
//
//	func TestMain(m *testing.M) { os.Exit(hometest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	return code
}

// cloudBinary builds homeport.dev/cloud/cmd/cloud from the workspace once.
func cloudBinary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "hometest-cloud-")
		if build.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bin := filepath.Join(build.dir, "cloud")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "homeport.dev/cloud/cmd/cloud").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build homeport.dev/cloud/cmd/cloud: %v\n%s", err, out)
			return
		}
		build.bin = bin
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// RequireHAProxy skips the test, saying why, when haproxy is not installed.
func RequireHAProxy(t testing.TB) {
	t.Helper()
	testnet.RequireCommand(t, "haproxy", "the cloud's data plane cannot run: apt-get install haproxy (deploy/install-deps.sh does)")
}

// Options shape a test cloud.
type Options struct {
	Slots int      // home slots; default 4
	Args  []string // more `cloud serve` flags
	Env   []string // more environment variables (KEY=value) for the cloud
}

// Cloud is a running (or killed) `cloud serve` process with a managed
// HAProxy.
type Cloud struct {
	Dir         string // --data
	APIURL      string // http://127.0.0.1:port
	SSHAddr     string // the SSH endpoint homes connect to
	HTTPAddr    string // public HTTP (HAProxy)
	HTTPSAddr   string // public HTTPS (HAProxy, SNI passthrough)
	TCPPorts    proto.PortRange
	TunnelPorts proto.PortRange // every slot's block

	bin     string
	args    []string
	env     []string
	logPath string
	client  *http.Client

	mu   sync.Mutex
	proc *process // nil when not running
}

// process is one run of `cloud serve`.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has been reaped
	haproxy int           // pid of its HAProxy master, once ready
}

// Start runs a cloud until the test ends. It is skipped when haproxy is not
// installed.
func Start(t testing.TB, o Options) *Cloud {
	t.Helper()
	RequireHAProxy(t)
	if o.Slots <= 0 {
		o.Slots = 4
	}
	c := &Cloud{
		Dir:     t.TempDir(),
		bin:     cloudBinary(t),
		env:     o.Env,
		logPath: filepath.Join(t.TempDir(), "cloud.log"),
		client:  &http.Client{Timeout: 10 * time.Second},
	}
	t.Cleanup(func() {
		c.stop(t)
		if t.Failed() {
			t.Logf("cloud log (%s):\n%s", c.logPath, c.logTail(60))
		}
	})
	// Ports are picked free, but another test process may take one before
	// the cloud binds it: then the cloud exits at once, and new ports are
	// picked (a bounded number of times).
	for attempt := 1; ; attempt++ {
		c.pickPorts(t, o)
		os.Remove(c.logPath) // a fresh log, so only this attempt's errors count
		if c.start(t, attempt < 4) {
			return c
		}
		t.Logf("a port was taken before the cloud bound it; retrying with new ports")
	}
}

// pickPorts chooses free ports and builds the command line.
func (c *Cloud) pickPorts(t testing.TB, o Options) {
	c.TunnelPorts, c.TCPPorts = testnet.CloudPorts(t, o.Slots, 16, 2)
	api := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	c.APIURL = "http://" + api
	c.SSHAddr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	c.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	c.HTTPSAddr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	c.args = append([]string{"serve", "--data", c.Dir,
		"--api-addr", api, "--ssh-addr", c.SSHAddr, "--http-addr", c.HTTPAddr, "--https-addr", c.HTTPSAddr,
		"--tcp-ports", c.TCPPorts.String(), "--tcp-block", "2",
		"--tunnel-port-base", strconv.Itoa(c.TunnelPorts.First), "--home-slots", strconv.Itoa(o.Slots),
		"--homes-per-user", "2", "--public-host", "127.0.0.1", "--haproxy", "managed", "--shape-dev", "off",
		"--auth-rate", "1000", "--metrics-addr", "127.0.0.1:0"}, o.Args...)
}

// start launches `cloud serve` and waits for its "cloud ready:" line and
// then for /readyz (HAProxy answering with the routes). When the cloud exits
// at once because a port is in use and retry is set, it returns false.
func (c *Cloud) start(t testing.TB, retry bool) bool {
	t.Helper()
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.bin, c.args...)
	if len(c.env) > 0 {
		cmd.Env = append(os.Environ(), c.env...)
	}
	cmd.Stderr = logf
	// The cloud must not outlive a crashed test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start cloud: %v", err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	ready := make(chan struct{})
	// Owned by the process: reads stdout to EOF (the process exited), then
	// reaps it.
	go func() {
		defer close(p.exited)
		defer logf.Close()
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			fmt.Fprintln(logf, "stdout:", sc.Text())
			if !seen && strings.HasPrefix(sc.Text(), "cloud ready:") {
				seen = true
				close(ready)
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
	}()
	c.mu.Lock()
	c.proc = p
	c.mu.Unlock()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case <-ready:
	case <-p.exited:
		if retry && strings.Contains(c.logTail(30), "address already in use") {
			return false
		}
		t.Fatalf("cloud serve exited before it was ready (%v):\n%s", cmd.ProcessState, c.logTail(30))
	case <-timeout.C:
		t.Fatalf("cloud serve not ready within 30s:\n%s", c.logTail(30))
	}
	if err := c.waitReadyz(20 * time.Second); err != nil {
		t.Fatalf("cloud never became ready: %v\n%s", err, c.logTail(30))
	}
	p.haproxy = childPid(cmd.Process.Pid, "haproxy")
	return true
}

// waitReadyz polls /readyz, which checks that HAProxy holds the routes.
func (c *Cloud) waitReadyz(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		resp, err := c.client.Get(c.APIURL + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("readyz: %d %s", resp.StatusCode, body)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %s: %w", limit, last)
}

// Kill kills the cloud with SIGKILL, as a crash or the OOM killer would, and
// waits until it and its HAProxy are gone (the ports are free again).
func (c *Cloud) Kill(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	p := c.proc
	c.proc = nil
	c.mu.Unlock()
	if p == nil {
		t.Fatal("hometest: Kill: the cloud is not running")
	}
	p.cmd.Process.Kill()
	<-p.exited
	if err := p.waitHAProxy(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// Restart starts the cloud again on the same data directory and ports,
// after Kill.
func (c *Cloud) Restart(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	running := c.proc != nil
	c.mu.Unlock()
	if running {
		t.Fatal("hometest: Restart: the cloud is still running; Kill it first")
	}
	c.start(t, false)
}

// stop ends the cloud gracefully (SIGTERM), escalating to SIGKILL.
func (c *Cloud) stop(t testing.TB) {
	c.mu.Lock()
	p := c.proc
	c.proc = nil
	c.mu.Unlock()
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		t.Errorf("cloud did not stop within 15s of SIGTERM; killing it")
		p.cmd.Process.Kill()
		<-p.exited
	}
	if err := p.waitHAProxy(10 * time.Second); err != nil {
		t.Error(err)
	}
}

// waitHAProxy waits for the cloud's HAProxy master to exit (it gets SIGTERM
// when the cloud dies), killing its process group if it lingers.
func (p *process) waitHAProxy(limit time.Duration) error {
	if p.haproxy == 0 {
		return nil
	}
	deadline := time.Now().Add(limit)
	for alive(p.haproxy) {
		if time.Now().After(deadline) {
			syscall.Kill(-p.haproxy, syscall.SIGKILL)
			return fmt.Errorf("hometest: HAProxy (pid %d) outlived its cloud by %s; killed it", p.haproxy, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// alive reports whether pid runs (a zombie waiting for init does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	return ok && !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// childPid finds the child of parent named comm, 0 when there is none.
func childPid(parent int, comm string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		lp, rp := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if lp < 0 || rp < lp {
			continue
		}
		fields := strings.Fields(s[rp+1:])
		if len(fields) < 2 || s[lp+1:rp] != comm {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == parent {
			return pid
		}
	}
	return 0
}

func (c *Cloud) logTail(lines int) string {
	b, _ := os.ReadFile(c.logPath)
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// User is an approved account with an API token.
type User struct {
	Name, Password, Token string
}

// CreateUser creates an approved account with `cloud users create` (the
// password on stdin) and gets a token with POST /api/v1/auth/token.
func (c *Cloud) CreateUser(t testing.TB, name string) *User {
	t.Helper()
	u := &User{Name: name, Password: "pw-" + randomHex(12)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, "users", "create", name, "--email", name+"@example.com", "--approved", "--data", c.Dir)
	cmd.Stdin = strings.NewReader(u.Password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cloud users create %s: %v\n%s", name, err, out)
	}
	var tok proto.Token
	if st := c.Do(t, "", "POST", "/api/v1/auth/token", proto.TokenRequest{Username: name, Password: u.Password}, &tok); st != http.StatusOK && st != http.StatusCreated {
		t.Fatalf("POST /api/v1/auth/token for %s: status %d", name, st)
	}
	u.Token = tok.Token
	return u
}

// Do calls the REST API with token (none when empty), sending body as JSON
// and decoding the answer into out (when not nil); it returns the status.
func (c *Cloud) Do(t testing.TB, token, method, path string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.APIURL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, b, err)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return resp.StatusCode
}

// Home is a home claimed through the API with a fresh ed25519 key.
type Home struct {
	proto.Home
	Owner   *User
	Signer  ssh.Signer    // the home's key
	KeyPath string        // the private key in OpenSSH format (0600), for ssh -i
	HostKey ssh.PublicKey // the cloud's host key from the API answer
	cloud   *Cloud
}

// ClaimHome claims a home for u with POST /api/v1/homes.
func (c *Cloud) ClaimHome(t testing.TB, u *User) *Home {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	h := &Home{Owner: u, cloud: c}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	if st := c.Do(t, u.Token, "POST", "/api/v1/homes", proto.ClaimHomeRequest{PublicKey: line}, &h.Home); st != http.StatusCreated {
		t.Fatalf("claim a home for %s: status %d", u.Name, st)
	}
	if h.Signer, err = ssh.NewSignerFromKey(priv); err != nil {
		t.Fatal(err)
	}
	if h.HostKey, _, _, _, err = ssh.ParseAuthorizedKey([]byte(h.SSH.HostKey)); err != nil {
		t.Fatalf("the cloud's host key %q: %v", h.SSH.HostKey, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	h.KeyPath = filepath.Join(t.TempDir(), h.Slug+".key")
	if err := os.WriteFile(h.KeyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

// SSHAddr is the cloud's SSH endpoint as the API gave it to the home.
func (h *Home) SSHAddr() string {
	return net.JoinHostPort(h.SSH.Host, strconv.Itoa(h.SSH.Port))
}

// KnownHosts writes a known_hosts file pinning the cloud's host key, for
// OpenSSH's UserKnownHostsFile, and returns its path.
func (h *Home) KnownHosts(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("[%s]:%d %s\n", h.SSH.Host, h.SSH.Port, h.SSH.HostKey)
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// AddBaseDomain adds a base domain to the home.
func (h *Home) AddBaseDomain(t testing.TB, domain string) {
	t.Helper()
	if st := h.cloud.Do(t, h.Owner.Token, "POST", "/api/v1/homes/"+h.Slug+"/base-domains", proto.BaseDomainRequest{Domain: domain}, nil); st != http.StatusCreated {
		t.Fatalf("add base domain %s: status %d", domain, st)
	}
}

// Map creates a mapping and returns it (with its tunnel port).
func (h *Home) Map(t testing.TB, req proto.MappingRequest) proto.Mapping {
	t.Helper()
	var m proto.Mapping
	if st := h.cloud.Do(t, h.Owner.Token, "POST", "/api/v1/homes/"+h.Slug+"/mappings", req, &m); st != http.StatusCreated {
		t.Fatalf("create mapping %+v: status %d", req, st)
	}
	return m
}

// FreePort returns a free loopback port outside the ephemeral range.
func FreePort(t testing.TB) int { return testnet.FreePort(t) }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Pids returns the process ids of the running `cloud serve` and of its
// HAProxy master (0 when not running), for benchmarks that count their CPU.
func (c *Cloud) Pids() (cloud, haproxy int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return 0, 0
	}
	return c.proc.cmd.Process.Pid, c.proc.haproxy
}

// RefusingEndpoint is an SSH server that refuses every key with the banner
// an edge sends a home it does not serve (the edge the home was moved away
// from); it returns its address and host key.
func RefusingEndpoint(t *testing.T) (string, ssh.PublicKey) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, &ssh.BannerError{Err: fmt.Errorf("other edge"), Message: "homeport: this home is served by another edge\r\n"}
	}}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				ssh.NewServerConn(conn, cfg)
			}()
		}
	}()
	return ln.Addr().String(), signer.PublicKey()
}

// ClientConfigFile writes the client config the web UI offers for h
// (homeport-<slug>.yaml, in a fresh directory), edited by edit when not nil,
// and returns its path.
func (c *Cloud) ClientConfigFile(t testing.TB, h *Home, edit func(*proto.ClientConfig)) string {
	t.Helper()
	cc := proto.ClientConfig{Kind: proto.ClientConfigKind, CloudURL: c.APIURL, Slug: h.Slug, PublicKey: h.PublicKey,
		SSH: proto.ClientConfigSSH{Host: h.SSH.Host, Port: h.SSH.Port, User: h.SSH.User, HostKey: h.SSH.HostKey}}
	if edit != nil {
		edit(&cc)
	}
	b, err := yaml.Marshal(cc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "homeport-"+h.Slug+".yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
