package agent_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/certs"
	"homeport.dev/home/internal/certs/pebbletest"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/entries"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/profile"
	"homeport.dev/home/internal/store"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto"
)

func TestMain(m *testing.M) { os.Exit(hometest.Main(m)) }

func testLog() *slog.Logger {
	if os.Getenv("HOMETEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// env is a fresh profile registered with a real cloud (HAProxy included),
// whose acme section points at a real Pebble that validates through that
// cloud's public ports.
type env struct {
	cloud  *hometest.Cloud
	ca     *pebbletest.Pebble
	p      *config.Profile
	db     *store.DB
	agent  *agent.Agent
	stop   func()
	ran    chan struct{}  // closed when the agent's Run has returned
	runErr error          // what it returned
	app    string         // a local plain-HTTP app
	roots  *x509.CertPool // Pebble's issuing roots, as a browser would trust them
	client *http.Client   // an internet client: every request to the cloud's HAProxy
}

// port of a host:port address.
func port(t testing.TB, addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newEnv starts a cloud, Pebble and a registered profile with base domain
// app.test; start runs its agent.
func newEnv(t testing.TB, profiles map[string]time.Duration) *env {
	t.Helper()
	c := hometest.Start(t, hometest.Options{})
	ca := pebbletest.Start(t, pebbletest.Options{HTTPPort: port(t, c.HTTPAddr), TLSPort: port(t, c.HTTPSAddr), Profiles: profiles})
	u := c.CreateUser(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, h, err := profile.Register(ctx, profile.RegisterOptions{Cloud: c.APIURL, Token: u.Token, Output: filepath.Join(t.TempDir(), "profile")})
	if err != nil {
		t.Fatal(err)
	}
	p.ACME = config.ACME{CAURL: ca.Directory, TrustedRoots: ca.RootsFile, Email: "alice@example.com"}
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	db := store.Open(p)
	e := &env{cloud: c, ca: ca, p: p, db: db, stop: func() {}, app: helloApp(t), roots: ca.IssuingRoots(t)}
	e.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", c.HTTPSAddr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: e.roots},
		ForceAttemptHTTP2: true,
	}}
	t.Cleanup(e.client.CloseIdleConnections)
	if st := c.Do(t, u.Token, "POST", "/api/v1/homes/"+h.Slug+"/base-domains", proto.BaseDomainRequest{Domain: "app.test"}, nil); st != http.StatusCreated {
		t.Fatalf("base domain app.test: status %d", st)
	}
	return e
}

// start runs the profile's agent until the test ends (or stop).
func (e *env) start(t testing.TB, o agent.Options) {
	t.Helper()
	e.stop()
	p, err := config.Load(e.p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	o.Log = testLog()
	o.Tunnel = tunnel.Config{MaxBackoff: time.Second}
	if o.Certs.RetryMin == 0 {
		o.Certs.RetryMin = 500 * time.Millisecond
	}
	a, err := agent.New(p, e.db, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		e.runErr = a.Run(ctx)
	}()
	stopped := false
	e.agent, e.ran = a, ran
	e.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-ran
		}
	}
	t.Cleanup(e.stop)
}

// expose adds an https entry the way `home expose` does (cloud mapping,
// then the entry) and makes the running agent pick it up.
func (e *env) expose(t testing.TB, host, target, mode string) store.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	en, err := entries.Normalize(store.Entry{Scheme: "https", Host: host, Target: target, Mode: mode, Enabled: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.agent.Cloud.CreateMapping(ctx, e.p.Cloud.Home, entries.Request(en))
	if err != nil {
		t.Fatal(err)
	}
	en.MappingID, en.TunnelPort = m.ID, m.TunnelPort
	if err := e.db.Add(ctx, &en); err != nil {
		t.Fatal(err)
	}
	if err := e.agent.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	return en
}

// waitCert waits until the agent reports domain valid with a serial other
// than old.
func (e *env) waitCert(t testing.TB, domain, old string, limit time.Duration) certs.Info {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		for _, c := range e.agent.Certificates() {
			if c.Domain == domain && c.State == certs.Valid && c.Serial != old {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new valid certificate for %s within %s: %+v", domain, limit, e.agent.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// seen is what the local app answers.
type seen struct {
	App, XFF, Proto, Host string
}

func helloApp(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(seen{App: "hello from the home app", XFF: r.Header.Get("X-Forwarded-For"), Proto: r.Header.Get("X-Forwarded-Proto"), Host: r.Host})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// get requests url through the cloud with a client that trusts only
// Pebble's roots, and returns what the app saw and the serial of the
// certificate the client verified.
func (e *env) get(t testing.TB, c *http.Client, url string) (seen, string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return seen{}, "", err
	}
	defer resp.Body.Close()
	var s seen
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, "", fmt.Errorf("%s: %w", resp.Status, err)
	}
	return s, resp.TLS.PeerCertificates[0].SerialNumber.Text(16), nil
}
