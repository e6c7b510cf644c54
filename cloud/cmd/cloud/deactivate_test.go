package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/proto"
)

// TestDeactivationByTheCLITakesTheHomesOffline: `cloud users deactivate`,
// run as its own process against the running cloud's database, closes the
// user's live SSH connection within a second, refuses the key, withdraws the
// routes (visitors get the unknown-name answer) and refuses the user's API
// token; `cloud users approve` brings the same routes back once the home
// reconnects, and the token works again.
func TestDeactivationByTheCLITakesTheHomesOffline(t *testing.T) {
	bin := cloudtest.Binary(t)
	testDeactivation(t, func(c *cloudtest.Cloud, _ string, active bool) {
		verb := map[bool]string{true: "approve", false: "deactivate"}[active]
		out, err := exec.Command(bin, "users", verb, "alice", "--data", c.Dir).CombinedOutput()
		if err != nil {
			t.Fatalf("cloud users %s alice: %v\n%s", verb, err, out)
		}
	})
}

// TestDeactivationByTheAPITakesTheHomesOffline: the same through the admin
// API (the web UI's button calls the same service).
func TestDeactivationByTheAPITakesTheHomesOffline(t *testing.T) {
	testDeactivation(t, func(c *cloudtest.Cloud, admin string, active bool) {
		verb := map[bool]string{true: "approve", false: "deactivate"}[active]
		if st, body := call(t, c, admin, "POST", "/api/v1/admin/users/alice/"+verb, nil); st != http.StatusOK {
			t.Fatalf("%s alice: %d %s", verb, st, body)
		}
	})
}

func testDeactivation(t *testing.T, setActive func(c *cloudtest.Cloud, adminToken string, active bool)) {
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true})
	root := c.NewHome(t, "root")
	if _, err := c.App.Accounts.SetActive(context.Background(), "root", true); err != nil {
		t.Fatal(err)
	}
	rootUser, _ := c.App.Accounts.User(context.Background(), "root")
	rootUser.Role = proto.RoleAdmin
	if err := c.App.DB.Model(&rootUser).Update("role", proto.RoleAdmin).Error; err != nil {
		t.Fatal(err)
	}
	admin := c.Token(t, root.User)

	h := c.NewHome(t, "alice")
	token := c.Token(t, h.User)
	must := func(st int, body []byte, want int) {
		t.Helper()
		if st != want {
			t.Fatalf("got %d %s, want %d", st, body, want)
		}
	}
	st, body := call(t, c, token, "POST", "/api/v1/homes/"+h.Slug+"/base-domains", proto.BaseDomainRequest{Domain: "alice.test"})
	must(st, body, http.StatusCreated)
	var m proto.Mapping
	st, body = call(t, c, token, "POST", "/api/v1/homes/"+h.Slug+"/mappings", proto.MappingRequest{Scheme: "http", Host: "app.alice.test"})
	must(st, body, http.StatusCreated)
	json.Unmarshal(body, &m)

	home := connect(t, c, h, m.TunnelPort)
	waitFor(t, "the route to serve", func() bool { return visit(t, c, "app.alice.test") == "200 hello from alice" })
	unknown := visit(t, c, "nobody.alice.test")
	if !strings.HasPrefix(unknown, "503 ") {
		t.Fatalf("an unknown name answers %q", unknown)
	}

	setActive(c, admin, false)
	select {
	case <-home.closed:
	case <-time.After(1500 * time.Millisecond): // the promise is 1 s; the rest is slack for a loaded machine
		t.Fatal("the deactivated user's SSH connection is still open")
	}
	if _, err := c.Dial(h); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("a deactivated user's key logged in: %v", err)
	}
	waitFor(t, "HAProxy to drop the route", func() bool { return liveRoute(t, c, admin, "app.alice.test") == "" })
	if got := visit(t, c, "app.alice.test"); got != unknown {
		t.Fatalf("a visitor of the deactivated user's name gets %q, not the unknown-name answer %q", got, unknown)
	}
	if st, body := call(t, c, token, "GET", "/api/v1/me", nil); st != http.StatusForbidden || !bytes.Contains(body, []byte(proto.CodeInactive)) {
		t.Fatalf("a deactivated user's token: %d %s", st, body)
	}

	setActive(c, admin, true)
	// The route is back in HAProxy before the home does anything (the
	// admin's live view of HAProxy's maps).
	waitFor(t, "the route to be back", func() bool { return liveRoute(t, c, admin, "app.alice.test") == strconv.Itoa(m.TunnelPort) })
	// The home retries with its backoff; here the test is the home.
	var client *ssh.Client
	waitFor(t, "the key to be accepted again", func() bool {
		var err error
		client, err = c.Dial(h)
		return err == nil
	})
	serveHome(t, c, h, client, m.TunnelPort)
	waitFor(t, "the route to serve again", func() bool { return visit(t, c, "app.alice.test") == "200 hello from alice" })
	if st, body := call(t, c, token, "GET", "/api/v1/me", nil); st != http.StatusOK {
		t.Fatalf("the re-approved user's token: %d %s", st, body)
	}
}

// home is a test home: one SSH connection forwarding one tunnel port to a
// web server that answers "hello from alice" after the PROXY header.
type home struct {
	closed chan struct{} // closed when the SSH connection ends
}

func connect(t *testing.T, c *cloudtest.Cloud, h cloudtest.Home, port int) *home {
	t.Helper()
	client, err := c.Dial(h)
	if err != nil {
		t.Fatal(err)
	}
	return serveHome(t, c, h, client, port)
}

// serveHome forwards port over client to the home's web server.
func serveHome(t *testing.T, c *cloudtest.Cloud, h cloudtest.Home, client *ssh.Client, port int) *home {
	t.Helper()
	t.Cleanup(func() { client.Close() })
	hm := &home{closed: make(chan struct{})}
	go func() {
		client.Wait()
		close(hm.closed)
	}()
	cloudtest.Forward(t, client, port, func(conn net.Conn) {
		br := bufio.NewReader(conn)
		// HTTP comes without a PROXY header (--reuse-home-connections).
		if _, err := proxyproto.Read(br); err != nil && !errors.Is(err, proxyproto.ErrNoProxyProtocol) {
			return
		}
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 16\r\nConnection: close\r\n\r\nhello from alice")
	})
	waitFor(t, "the forward", func() bool { return c.App.SSH.ForwardUp(h.ID, port) })
	return hm
}

// visit sends a visitor's request for host to the cloud's public HTTP port
// and returns "STATUS BODY".
func visit(t *testing.T, c *cloudtest.Cloud, host string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", c.HTTPAddr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

// liveRoute returns the tunnel port HAProxy's http map holds for host, or "".
func liveRoute(t *testing.T, c *cloudtest.Cloud, admin, host string) string {
	t.Helper()
	var rep proto.RoutesReport
	st, body := call(t, c, admin, "GET", "/api/v1/admin/routes", nil)
	if err := json.Unmarshal(body, &rep); st != http.StatusOK || err != nil {
		t.Fatalf("admin routes: %d %s", st, body)
	}
	for _, r := range rep.Routes {
		if r.Map == "http" && r.Key == host {
			return r.Live
		}
	}
	return ""
}

func call(t *testing.T, c *cloudtest.Cloud, token, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.APIURL+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitFor polls cond every 20 ms for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	cloudtest.RemoveBinary()
	os.Exit(code)
}
