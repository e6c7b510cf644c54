package haproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"homeport.dev/proto/testnet"
)

// env is the one HAProxy shared by the package's tests, started by TestMain.
// It is nil when haproxy is not installed.
var env *testEnv

type testEnv struct {
	dir      string
	params   Params
	client   *Client
	proc     *Process
	onReady  atomic.Int32 // OnReady calls
	httpAddr string
	tlsAddr  string

	mu       sync.Mutex
	nextPort int // next tunnel port to try
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return m.Run() // tests needing haproxy skip themselves
	}
	e, stop, err := startEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "haproxy test harness:", err)
		return 1
	}
	env = e
	code := m.Run()

	// Stopping must leave no haproxy behind.
	pids := []int{e.proc.Pid()}
	if info, err := e.client.Info(context.Background()); err == nil {
		pids = append(pids, info.Pid)
	}
	stop()
	for _, pid := range pids {
		if alive(pid) {
			fmt.Fprintf(os.Stderr, "haproxy process %d still alive after Process stopped\n", pid)
			code = 1
		}
	}
	if st := e.proc.State(); st != StateStopped {
		fmt.Fprintf(os.Stderr, "Process state after Run returned = %v, want stopped\n", st)
		code = 1
	}
	return code
}

// startEnv renders a config on free loopback ports into a temp dir and runs
// it under a Process.
func startEnv() (*testEnv, func(), error) {
	dir, err := os.MkdirTemp("", "haproxy-test-")
	if err != nil {
		return nil, nil, err
	}
	// Reserved for the package's life, so parallel test processes never
	// pick the same ports (testnet.Reserve).
	tunnels, releaseTunnels, err := testnet.Reserve(200, 1)
	if err != nil {
		return nil, nil, err
	}
	public, releasePublic, err := testnet.Reserve(9, 1)
	if err != nil {
		releaseTunnels()
		return nil, nil, err
	}
	release := func() { releaseTunnels(); releasePublic() }
	e := &testEnv{dir: dir, nextPort: tunnels.First}
	e.params = Params{
		HTTPAddr:    "127.0.0.1:" + strconv.Itoa(public.Last-1),
		HTTPSAddr:   "127.0.0.1:" + strconv.Itoa(public.Last),
		TCPHost:     "127.0.0.1",
		TCPPorts:    PortRange{First: public.First, Last: public.Last - 2},
		TunnelPorts: tunnels,
		MapDir:      dir,
		SocketPath:  filepath.Join(dir, "admin.sock"),
		PidFile:     filepath.Join(dir, "haproxy.pid"),
	}
	e.httpAddr, e.tlsAddr = e.params.HTTPAddr, e.params.HTTPSAddr
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := WriteConfig(cfgPath, e.params); err != nil {
		return nil, nil, err
	}
	if err := WriteMaps(dir, nil); err != nil {
		return nil, nil, err
	}
	e.client = &Client{SocketPath: e.params.SocketPath}
	e.proc = NewProcess(ProcessConfig{
		ConfigPath:  cfgPath,
		SocketPath:  e.params.SocketPath,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		StopTimeout: time.Second,
		MinBackoff:  20 * time.Millisecond,
		OnReady:     func(int) { e.onReady.Add(1) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- e.proc.Run(ctx) }()
	stop := func() {
		cancel()
		<-runErr
		os.RemoveAll(dir)
		release()
	}
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	if err := e.proc.WaitReady(wctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("haproxy not ready: %w", err)
	}
	return e, stop, nil
}

// needEnv returns the shared HAProxy or skips the test.
func needEnv(t testing.TB) *testEnv {
	t.Helper()
	if env == nil {
		testnet.Missing(t, "haproxy is not on PATH: install HAProxy 2.6+ (deploy/install-deps.sh does) to run the data-plane tests")
	}
	return env
}

func (e *testEnv) mapName(m Map) string { return MapPath(e.dir, m) }

func (e *testEnv) tcpAddr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// listenTunnel listens on a free port inside TunnelPorts, as sshd would for
// a home's tunnel.
func (e *testEnv) listenTunnel(t testing.TB) (net.Listener, int) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for ; e.nextPort <= e.params.TunnelPorts.Last; e.nextPort++ {
		ln, err := net.Listen("tcp", e.tcpAddr(e.nextPort))
		if err != nil {
			continue
		}
		port := e.nextPort
		e.nextPort++
		t.Cleanup(func() { ln.Close() })
		return ln, port
	}
	t.Fatal("no free tunnel port left")
	return nil, 0
}

// proxyV2 wraps ln so that every connection must start with a PROXY v2 header.
func proxyV2(ln net.Listener) net.Listener {
	return &proxyproto.Listener{
		Listener:   ln,
		ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil },
		ValidateHeader: func(h *proxyproto.Header) error {
			if h.Version != 2 {
				return fmt.Errorf("PROXY protocol version %d, want 2", h.Version)
			}
			return nil
		},
		ReadHeaderTimeout: 5 * time.Second,
	}
}

// addRoute adds a live route and writes it to the map file, as the cloud does.
func (e *testEnv) addRoute(t testing.TB, m Map, key string, port int) {
	t.Helper()
	ctx := context.Background()
	if err := e.client.AddMap(ctx, e.mapName(m), key, strconv.Itoa(port)); err != nil {
		t.Fatalf("AddMap(%s, %s): %v", m, key, err)
	}
	t.Cleanup(func() {
		if err := e.client.DelMap(ctx, e.mapName(m), key); err != nil && !errors.Is(err, ErrNotFound) {
			t.Errorf("cleanup DelMap(%s, %s): %v", m, key, err)
		}
	})
}

// uniqueHost returns a hostname no other test uses.
func uniqueHost() string {
	return fmt.Sprintf("t%d.example.com", mrand.Uint64())
}

// selfSigned returns a throwaway certificate for the test TLS servers.
func selfSigned(t testing.TB, host string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
