package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/certs/pebbletest"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/store"
	"homeport.dev/proto"
)

// upRun is a running `home up`: its output so far, and a way to stop it
// with Ctrl-C.
type upRun struct {
	cmd   *exec.Cmd
	lines chan string
	seen  []string
}

// up starts `home up args...` as the user would in a terminal.
func (u *user) up(args ...string) *upRun {
	u.t.Helper()
	cmd := exec.Command(homeBin, append([]string{"up"}, args...)...)
	cmd.Env = append(os.Environ(), "HOMEPORT_PROFILES="+u.profiles, "HOME_CONFIG=")
	r, w, err := os.Pipe()
	if err != nil {
		u.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	w.Close()
	run := &upRun{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		defer close(run.lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			run.lines <- sc.Text()
		}
	}()
	u.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if u.t.Failed() || testing.Verbose() {
			u.t.Logf("home up output:\n%s", strings.Join(run.seen, "\n"))
		}
	})
	return run
}

// waitFor returns the first line matching re, failing after a bound.
func (r *upRun) waitFor(t *testing.T, re string) []string {
	t.Helper()
	pattern := regexp.MustCompile(re)
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-r.lines:
			if !ok {
				t.Fatalf("home up ended (%v) before printing %q:\n%s", r.cmd.Wait(), re, strings.Join(r.seen, "\n"))
			}
			r.seen = append(r.seen, line)
			if m := pattern.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-timeout:
			t.Fatalf("home up did not print %q within 60s:\n%s", re, strings.Join(r.seen, "\n"))
		}
	}
}

// stop sends Ctrl-C and expects a clean exit.
func (r *upRun) stop(t *testing.T) {
	t.Helper()
	r.cmd.Process.Signal(os.Interrupt)
	if err := r.cmd.Wait(); err != nil {
		t.Errorf("home up after Ctrl-C: %v\n%s", err, strings.Join(r.seen, "\n"))
	}
}

// TestUpPublishesOnTheSharedDomain: a user with no domain of their own
// publishes a local app in one command, over http and then https with a
// certificate from the CA, and the same command run again reuses the name.
func TestUpPublishesOnTheSharedDomain(t *testing.T) {
	c := hometest.Start(t, hometest.Options{Args: []string{"--shared-domain", "homes.test"}})
	ca := pebbletest.Start(t, pebbletest.Options{HTTPPort: portOf(t, c.HTTPAddr), TLSPort: portOf(t, c.HTTPSAddr)})
	alice := c.CreateUser(t, "alice")
	u := newUser(t)
	app := web(t, "alice-app")

	run := u.up("--cloud", c.APIURL, "--token", alice.Token, "--to", app)
	m := run.waitFor(t, `^exposed http://(\S+) -> `)
	host := m[1]
	var hs []proto.Home
	c.Do(t, alice.Token, "GET", "/api/v1/homes", nil, &hs)
	if len(hs) != 1 || host != hs[0].Slug+".homes.test" {
		t.Fatalf("home up published %s; want the home's own name on the shared domain (homes %+v)", host, hs)
	}
	// The URL printed works: the cloud's public port is not 80 here.
	run.waitFor(t, `^visitors reach it at http://`+regexp.QuoteMeta(host)+`:`+strconv.Itoa(portOf(t, c.HTTPAddr))+`/$`)
	run.waitFor(t, `tunnel connected \| http://`+regexp.QuoteMeta(host)+` -> \S+ up$`)
	if got, err := visit(t, c, host); err != nil || !strings.HasPrefix(got, "alice-app") {
		t.Fatalf("a visitor of %s: %q %v", host, got, err)
	}
	run.stop(t)

	// The token is not in the profile: deleting every token of the account
	// leaves the home working.
	profiles, _ := filepath.Glob(filepath.Join(u.profiles, "*", "config.yaml"))
	if len(profiles) != 1 {
		t.Fatalf("profiles: %v", profiles)
	}
	if raw, _ := os.ReadFile(profiles[0]); strings.Contains(string(raw), alice.Token) {
		t.Fatal("the profile stores the account's API token")
	}
	var toks []proto.Token
	c.Do(t, alice.Token, "GET", "/api/v1/tokens", nil, &toks)
	for _, tk := range toks {
		c.Do(t, alice.Token, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", tk.ID), nil, nil)
	}

	// https on the same machine: `home up` again finds the profile by its
	// cloud, and the certificate comes from the CA through the tunnel.
	p, err := config.Load(filepath.Dir(profiles[0]))
	if err != nil {
		t.Fatal(err)
	}
	p.ACME = config.ACME{CAURL: ca.Directory, TrustedRoots: ca.RootsFile, Email: "alice@example.com"}
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	run = u.up("--cloud", c.APIURL, "--to", app, "--https", "--host", "blog")
	m = run.waitFor(t, `^exposed https://(\S+) -> `)
	if want := "blog-" + hs[0].Slug + ".homes.test"; m[1] != want {
		t.Fatalf("--host blog published %s, want %s", m[1], want)
	}
	run.waitFor(t, `https://`+regexp.QuoteMeta(m[1])+` -> \S+ up( \||$)`)
	if got := httpsGet(t, c, ca, m[1]); !strings.HasPrefix(got, "alice-app") {
		t.Fatalf("https visitor: %q", got)
	}
	// The home told the cloud, which counts orders against the CA's weekly
	// limit per registered domain.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(metrics(t, c), `homeport_certificate_orders_week{domain="homes.test"} 1`) {
		if time.Now().After(deadline) {
			t.Fatalf("the cloud never counted the certificate order:\n%s", metrics(t, c))
		}
		time.Sleep(50 * time.Millisecond)
	}
	run.stop(t)

	// Run again with nothing new: what was exposed is reused, not doubled.
	run = u.up("--cloud", c.APIURL, "--to", app)
	run.waitFor(t, `^already exposed http://`+regexp.QuoteMeta(host))
	run.waitFor(t, `tunnel connected`)
	run.stop(t)
	if out := u.must("forwards", "list"); strings.Count(out, "\n") != 3 {
		t.Errorf("home up run again added entries:\n%s", out)
	}
}

// httpsGet fetches https://host/ through the cloud's public HTTPS port as
// an internet client that trusts only the test CA.
func httpsGet(t *testing.T, c *hometest.Cloud, ca *pebbletest.Pebble, host string) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", c.HTTPSAddr)
		},
		TLSClientConfig: &tls.Config{RootCAs: ca.IssuingRoots(t)},
	}}
	resp, err := client.Get("https://" + host + "/")
	if err != nil {
		t.Fatalf("HTTPS to %s through the cloud: %v", host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// metrics is the cloud's Prometheus text (loopback needs no token).
func metrics(t *testing.T, c *hometest.Cloud) string {
	t.Helper()
	resp, err := http.Get(c.APIURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestPublicURLNamesANonDefaultPort(t *testing.T) {
	h := proto.Home{SSH: proto.SSHEndpoint{Host: "cloud.example.com"}, PublicHTTPPort: 80, PublicHTTPSPort: 8443}
	for _, c := range []struct {
		e    store.Entry
		want string
	}{
		{store.Entry{Scheme: "http", Host: "a.example.com"}, "http://a.example.com/"},
		{store.Entry{Scheme: "https", Host: "a.example.com"}, "https://a.example.com:8443/"},
		{store.Entry{Scheme: "tcp", PublicPort: 10001}, "cloud.example.com:10001"},
	} {
		if got := publicURL(c.e, h); got != c.want {
			t.Errorf("publicURL(%+v) = %s, want %s", c.e, got, c.want)
		}
	}
	if got := publicURL(store.Entry{Scheme: "http", Host: "a.example.com"}, proto.Home{}); got != "http://a.example.com/" {
		t.Errorf("an older cloud (no ports in its answer): %s", got)
	}
}
