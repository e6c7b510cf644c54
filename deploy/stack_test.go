package deploy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"homeport.dev/proto/testnet"
)

const (
	stackEnv    = "HOMEPORT_TEST_COMPOSE_STACK"
	stackHost   = "cloud.stack.test" // the cloud's name, in this test's own /etc/hosts
	capNetAdmin = 12
)

// TestComposeStackWithoutContainers runs compose.yaml's stack as its
// services' processes, without a container engine (make test runs none;
// deploy/smoke.sh does the same with one): in a network namespace of its
// own, standing for the `netns` service, with that service's sysctl; the
// cloud and HAProxy as uid 10001 with compose's command lines and
// environment (the cloud with NET_ADMIN only, HAProxy with no capability),
// sharing a data directory that starts 0755 like a fresh volume. It waits
// for compose's healthcheck to pass before starting HAProxy, as
// depends_on does, then creates the first admin with the CLI, registers a
// home over the cloud's HTTPS through HAProxy :443 (chain verified against
// a private CA, the operator's --tls-cert), publishes a local service and
// fetches it through HAProxy :80; then restarts the cloud alone and fetches
// it again.
func TestComposeStackWithoutContainers(t *testing.T) {
	if os.Getenv(stackEnv) == "" {
		testnet.RequireRoot(t, "runs the stack as uid 10001 in a network and mount namespace of its own")
		testnet.RequireCommand(t, "haproxy", "apt-get install haproxy (deploy/install-deps.sh does)")
		inNamespaces(t, stackEnv)
		return
	}
	s := newStack(t)
	s.startCloud(t)
	s.waitHealthy(t)
	s.startHAProxy(t)

	s.cli(t, strings.NewReader("stack test passphrase\n"), "users", "create", "admin", "--email", "admin@example.com", "--admin")
	token := s.token(t)

	profile := filepath.Join(s.base, "profile")
	if err := os.Mkdir(profile, 0o755); err != nil { // an empty volume
		t.Fatal(err)
	}
	s.home(t, "register", "--cloud", "https://"+stackHost, "--token", token, "--output", profile, "--ca-file", filepath.Join(s.base, "tls", "ca.pem"))
	s.startHome(t, profile)
	app := testnet.Listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello from home") })}
	go srv.Serve(app)
	t.Cleanup(func() { srv.Close() })
	s.homeWhenUp(t, "domains", "add", "homes.test")
	s.home(t, "expose", "http", "app.homes.test", "--to", app.Addr().String())
	s.waitRouted(t)

	s.stopCloud(t)
	s.startCloud(t)
	s.waitRouted(t)
}

// stack is compose.yaml's services run as processes.
type stack struct {
	base, data        string
	cloudBin, homeBin string
	cloudEnv          []string
	cloud             types.ServiceConfig
	hap               types.ServiceConfig
	cloudProc         *exec.Cmd
	cloudExited       chan struct{}
	roots             *x509.CertPool
}

func newStack(t *testing.T) *stack {
	t.Helper()
	p := loadProject(t)
	netns := service(t, p, "netns")
	for k, v := range netns.Sysctls { // what the namespace's owner sets
		if err := os.WriteFile("/proc/sys/"+strings.ReplaceAll(k, ".", "/"), []byte(v), 0o644); err != nil {
			t.Fatalf("sysctl %s=%s: %v", k, v, err)
		}
	}
	s := &stack{base: t.TempDir(), cloud: service(t, p, "cloud"), hap: service(t, p, "haproxy")}
	for _, d := range []string{filepath.Dir(s.base), s.base} { // uid 10001 reaches its volume below
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	privateHosts(t, s.base)
	s.roots = writeCerts(t, filepath.Join(s.base, "tls"))

	// A fresh volume: exists, empty, 0755, owned by the services' user.
	uid, gid := user(t, s.cloud)
	s.data = filepath.Join(s.base, "homeport")
	if err := os.Mkdir(s.data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(s.data, uid, gid); err != nil {
		t.Fatal(err)
	}
	if hu, _ := user(t, s.hap); hu != uid {
		t.Fatalf("haproxy runs as %d, the cloud as %d: the 0700 volume is the cloud's", hu, uid)
	}

	bin := os.Getenv(stackEnv) // built by the parent, which has the network for modules
	s.cloudBin, s.homeBin = filepath.Join(bin, "cloud"), filepath.Join(bin, "home")

	// compose.yaml's environment for the cloud, on this volume, plus the
	// operator's certificate (no public CA reaches a test machine).
	s.cloudEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + s.data}
	for k, v := range s.cloud.Environment {
		if v != nil {
			s.cloudEnv = append(s.cloudEnv, k+"="+s.onVolume(*v))
		}
	}
	s.cloudEnv = append(s.cloudEnv,
		"CLOUD_TLS_CERT="+filepath.Join(s.base, "tls", "cert.pem"), "CLOUD_TLS_KEY="+filepath.Join(s.base, "tls", "key.pem"))
	return s
}

func loadProject(t *testing.T) *types.Project {
	t.Helper()
	root := repoRoot(t)
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "compose.yaml")}},
		Environment: map[string]string{"HOMEPORT_PUBLIC_HOST": stackHost},
	}, func(o *loader.Options) { o.SetProjectName("homeport", true) })
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// user is a service's numeric "UID:GID".
func user(t *testing.T, s types.ServiceConfig) (int, int) {
	t.Helper()
	var uid, gid int
	if _, err := fmt.Sscanf(s.User, "%d:%d", &uid, &gid); err != nil || uid == 0 {
		t.Fatalf("%s: user %q, want a non-root UID:GID", s.Name, s.User)
	}
	return uid, gid
}

func (s *stack) onVolume(v string) string { return strings.ReplaceAll(v, "/var/lib/homeport", s.data) }

// asService runs a process as svc's user, with only the capabilities given.
func (s *stack) asService(t *testing.T, svc types.ServiceConfig, caps ...uintptr) *syscall.SysProcAttr {
	uid, gid := user(t, svc)
	return &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true},
		AmbientCaps: caps,
		Pdeathsig:   syscall.SIGKILL,
	}
}

func (s *stack) logFile(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(s.base, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("%s log:\n%s", name, b)
		}
	})
	return f
}

// startCloud runs the cloud service's command (the image's entrypoint is
// the cloud binary) with NET_ADMIN, its only capability.
func (s *stack) startCloud(t *testing.T) {
	t.Helper()
	cmd := exec.Command(s.cloudBin, s.cloud.Command...)
	cmd.Env = s.cloudEnv
	log := s.logFile(t, "cloud")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = s.asService(t, s.cloud, capNetAdmin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cloudProc, s.cloudExited = cmd, make(chan struct{})
	done := s.cloudExited
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { s.stopCloud(t) })
}

func (s *stack) stopCloud(t *testing.T) {
	if s.cloudProc == nil {
		return
	}
	s.cloudProc.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.cloudExited:
	case <-time.After(30 * time.Second):
		s.cloudProc.Process.Kill()
		<-s.cloudExited
		t.Error("the cloud did not stop within 30s of SIGTERM")
	}
	s.cloudProc = nil
}

// waitHealthy runs compose's healthcheck, as the engine does, until it
// passes (depends_on: service_healthy).
func (s *stack) waitHealthy(t *testing.T) {
	t.Helper()
	hc := s.cloud.HealthCheck.Test
	if len(hc) < 2 || hc[0] != "CMD" || hc[1] != "cloud" {
		t.Fatalf("healthcheck %v", hc)
	}
	var out []byte
	var err error
	for range 60 {
		cmd := exec.Command(s.cloudBin, hc[2:]...)
		cmd.Env = s.cloudEnv
		cmd.SysProcAttr = s.asService(t, s.cloud, capNetAdmin)
		if out, err = cmd.CombinedOutput(); err == nil {
			return
		}
		select {
		case <-s.cloudExited:
			t.Fatal("the cloud exited before it was healthy")
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Fatalf("healthcheck %v never passed: %v\n%s", hc, err, out)
}

// startHAProxy runs the haproxy service's command with its image's
// entrypoint, as uid 10001 and without any capability: it binds 80 and 443
// thanks to the namespace's sysctl alone.
func (s *stack) startHAProxy(t *testing.T) {
	t.Helper()
	var entrypoint string
	for _, st := range parseDockerfile(t, filepath.Join(repoRoot(t), "deploy", "Dockerfile.haproxy")) {
		for _, in := range st.Steps {
			if in.Cmd == "ENTRYPOINT" {
				var ep []string
				if err := json.Unmarshal([]byte(in.Args), &ep); err != nil || len(ep) != 1 {
					t.Fatalf("ENTRYPOINT %s", in.Args)
				}
				entrypoint = ep[0]
			}
		}
	}
	args := make([]string, len(s.hap.Command))
	for i, a := range s.hap.Command {
		args[i] = s.onVolume(a)
	}
	cmd := exec.Command(entrypoint, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	log := s.logFile(t, "haproxy")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = s.asService(t, s.hap)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGUSR1) // soft stop
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	// HTTPS through HAProxy: the cloud's name over :443, chain verified.
	client := s.client()
	var err error
	for range 60 {
		var resp *http.Response
		if resp, err = client.Get("https://" + stackHost + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			err = fmt.Errorf("/readyz: %s", resp.Status)
		}
		select {
		case <-exited:
			t.Fatal("haproxy exited")
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Fatalf("the cloud is not ready over https://%s through HAProxy: %v", stackHost, err)
}

func (s *stack) client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.roots}}}
}

// cli runs an admin command in the cloud's "container": its user, its
// environment.
func (s *stack) cli(t *testing.T, stdin io.Reader, args ...string) {
	t.Helper()
	cmd := exec.Command(s.cloudBin, args...)
	cmd.Env = s.cloudEnv
	cmd.Stdin = stdin
	cmd.SysProcAttr = s.asService(t, s.cloud, capNetAdmin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cloud %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (s *stack) token(t *testing.T) string {
	t.Helper()
	resp, err := s.client().Post("https://"+stackHost+"/api/v1/auth/token", "application/json",
		strings.NewReader(`{"username":"admin","password":"stack test passphrase","name":"stack"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token == "" {
		t.Fatalf("token over HTTPS: %s %v", resp.Status, err)
	}
	return tok.Token
}

func (s *stack) home(t *testing.T, args ...string) {
	t.Helper()
	if out, err := s.homeCmd(args...).CombinedOutput(); err != nil {
		t.Fatalf("home %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (s *stack) homeCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(s.homeBin, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + s.base, "HOME_CONFIG=" + filepath.Join(s.base, "profile")}
	return cmd
}

// homeWhenUp runs a home command once the console answers it.
func (s *stack) homeWhenUp(t *testing.T, args ...string) {
	t.Helper()
	var out []byte
	var err error
	for range 60 {
		if out, err = s.homeCmd(args...).CombinedOutput(); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("home %s: %v\n%s", strings.Join(args, " "), err, out)
}

func (s *stack) startHome(t *testing.T, profile string) {
	t.Helper()
	cmd := s.homeCmd("console")
	log := s.logFile(t, "home")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	startUntilCleanup(t, cmd, 10*time.Second, nil)
}

// startUntilCleanup starts cmd and, when the test ends, stops it as a
// service manager would (SIGTERM, SIGKILL after grace), then runs after.
// The returned channel is closed when the process exits.
func startUntilCleanup(t *testing.T, cmd *exec.Cmd, grace time.Duration, after func()) <-chan struct{} {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(grace):
			cmd.Process.Kill()
			<-exited
		}
		if after != nil {
			after()
		}
	})
	return exited
}

// waitRouted fetches the home's service as a visitor: HAProxy :80 by Host.
func (s *stack) waitRouted(t *testing.T) {
	t.Helper()
	var last string
	for range 120 {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:80/", nil)
		req.Host = "app.homes.test"
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && bytes.Equal(b, []byte("hello from home")) {
				return
			}
			last = resp.Status + ": " + string(b)
		} else {
			last = err.Error()
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("http://app.homes.test/ through HAProxy :80 never reached the home's service: %s", last)
}

// writeCerts makes a private CA and a certificate for stackHost signed by
// it, world-readable in dir (the cloud's user reads them), and returns the
// CA as a pool.
func writeCerts(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "homeport stack test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: stackHost}, DNSNames: []string{stackHost},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	for name, block := range map[string]*pem.Block{
		"ca.pem": {Type: "CERTIFICATE", Bytes: caDER}, "cert.pem": {Type: "CERTIFICATE", Bytes: leafDER},
		"key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pool
}

// inNamespaces builds the cloud and home binaries, then runs the calling
// test again in a child process with a network and a mount namespace of its
// own (loopback only; its own /etc/hosts), env naming the binaries'
// directory, and fails when the child fails.
func inNamespaces(t *testing.T, env string) {
	t.Helper()
	bin := t.TempDir()
	for _, d := range []string{filepath.Dir(bin), bin} { // unprivileged users run the binaries from here
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, pkg := range []string{"homeport.dev/cloud/cmd/cloud", "homeport.dev/home/cmd/home"} {
		if b, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), env+"="+bin, testnet.SkipLogEnv+"=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("in namespaces of its own:\n%s", out)
	if err != nil {
		t.Fatalf("failed: %v", err)
	}
}

// privateHosts brings the namespace's loopback up and makes stackHost
// resolve to it, as a DNS record would (the mount namespace is private: the
// machine's /etc/hosts is untouched).
func privateHosts(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("loopback up: %v %s", err, out)
	}
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost "+stackHost+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(hosts, "/etc/hosts", "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
}
