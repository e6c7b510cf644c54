package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/keys"
	"homeport.dev/proto"
)

// These tests drive the home's own credential through the real binaries:
// a home signs its requests with its key, so the user's API tokens can
// change without touching it; every way of claiming a home ends in a
// working profile; release and key rotation leave nothing half done.

// runIn runs `home args...` with stdin.
func (u *user) runIn(stdin string, args ...string) (string, error) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, homeBin, args...)
	cmd.Env = append(os.Environ(), "HOMEPORT_PROFILES="+u.profiles, "HOME_CONFIG=")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// revokeAllTokens rotates every API token of u, then deletes them all:
// the account has no working token left.
func revokeAllTokens(t *testing.T, c *hometest.Cloud, u *hometest.User) {
	t.Helper()
	var toks []proto.Token
	c.Do(t, u.Token, "GET", "/api/v1/tokens", nil, &toks)
	if len(toks) == 0 {
		t.Fatal("the user has no token to revoke")
	}
	var rotated proto.Token
	if st := c.Do(t, u.Token, "POST", fmt.Sprintf("/api/v1/tokens/%d/rotate", toks[0].ID), nil, &rotated); st != http.StatusOK {
		t.Fatalf("rotate the token: %d", st)
	}
	for _, tk := range toks {
		if st := c.Do(t, rotated.Token, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", tk.ID), nil, nil); st != http.StatusNoContent {
			t.Fatalf("delete token %d: %d", tk.ID, st)
		}
	}
	if st := c.Do(t, u.Token, "GET", "/api/v1/me", nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("the old token still works after rotation and deletion: %d", st)
	}
}

// TestHomeOutlivesTheUsersTokens: the profile holds no account token, so
// rotating and then deleting every API token of the user leaves the home
// working: status, domains, expose, the tunnel and its traffic.
func TestHomeOutlivesTheUsersTokens(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	alice := c.CreateUser(t, "alice")
	u := newUser(t)
	profile := register(u, c, alice.Token, filepath.Join(t.TempDir(), "p"))
	if b, _ := os.ReadFile(filepath.Join(profile, "config.yaml")); strings.Contains(string(b), alice.Token) || strings.Contains(string(b), "token") {
		t.Fatalf("the profile stores an account token:\n%s", b)
	}
	u.must("--config", profile, "domains", "add", "example.com")

	revokeAllTokens(t, c, alice)

	if out := u.must("--config", profile, "domains", "list"); !strings.Contains(out, "example.com") {
		t.Errorf("domains list after the tokens went: %s", out)
	}
	u.must("--config", profile, "domains", "add", "example.org")
	u.must("--config", profile, "expose", "http", "web.example.org", "--to", web(t, "alice-web"))
	u.console(profile)
	u.waitUp(profile, 1)
	if got, err := visit(t, c, "web.example.org"); err != nil || !strings.HasPrefix(got, "alice-web") {
		t.Fatalf("through the cloud after the tokens went: %q %v", got, err)
	}
	if out := u.must("--config", profile, "status"); !strings.Contains(out, "tunnel: connected") {
		t.Errorf("status: %s", out)
	}
	// The limit is shown, and changed only in the cloud's web UI.
	if out := u.must("--config", profile, "limit"); !strings.Contains(out, "bandwidth limit: none") || !strings.Contains(out, "change it in the cloud's web UI") {
		t.Errorf("limit: %s", out)
	}
	u.fails("change it in the cloud's web UI", "--config", profile, "limit", "500")
}

// TestOldProfileWithTokenKeepsWorking: a profile written before homes
// signed their requests (cloud.token in config.yaml) loads, loses the token
// on first use, says so once, and works with the token revoked.
func TestOldProfileWithTokenKeepsWorking(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	alice := c.CreateUser(t, "alice")
	u := newUser(t)
	profile := register(u, c, alice.Token, filepath.Join(t.TempDir(), "p"))
	cfg := filepath.Join(profile, "config.yaml")
	b, _ := os.ReadFile(cfg)
	old := regexp.MustCompile(`(?m)^(\s+)home: `).ReplaceAllString(string(b), "${1}token: "+alice.Token+"\n${1}home: ")
	if err := os.WriteFile(cfg, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	revokeAllTokens(t, c, alice)
	out := u.must("--config", profile, "domains", "list")
	if !strings.Contains(out, "removed the account API token") {
		t.Errorf("first use of an old profile did not say the token was removed: %s", out)
	}
	if b, _ := os.ReadFile(cfg); strings.Contains(string(b), alice.Token) {
		t.Errorf("the token is still in config.yaml:\n%s", b)
	}
	if st, _ := os.Stat(cfg); st.Mode().Perm() != 0o600 {
		t.Errorf("config.yaml mode %o after the rewrite, want 600", st.Mode().Perm())
	}
	if out := u.must("--config", profile, "domains", "list"); strings.Contains(out, "removed the account API token") {
		t.Errorf("the notice came twice: %s", out)
	}
}

// TestWebClaimedHomeReachesARunningAgent: a home claimed with a key outside
// `home` (the web UI, the API) becomes a working profile both ways a user
// can take: `home register --home SLUG --private-key K` and `home import
// homeport-SLUG.yaml --private-key K`. A wrong key or an altered file is
// refused and writes nothing.
func TestWebClaimedHomeReachesARunningAgent(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	alice := c.CreateUser(t, "alice")
	u := newUser(t)
	other := filepath.Join(t.TempDir(), "other")
	u.must("keygen", "--output", other)

	// Adopt with the token.
	h1 := c.ClaimHome(t, alice)
	bad := filepath.Join(t.TempDir(), "bad")
	u.fails("this key is not "+h1.Slug+"'s; the web UI shows its key", "register", "--cloud", c.APIURL, "--token", alice.Token, "--home", h1.Slug, "--private-key", other, "--output", bad)
	adopted := filepath.Join(t.TempDir(), "adopted")
	out := u.must("register", "--cloud", c.APIURL, "--token", alice.Token, "--home", h1.Slug, "--private-key", h1.KeyPath, "--output", adopted)
	if !strings.Contains(out, "registered home "+h1.Slug) {
		t.Errorf("register --home: %s", out)
	}

	// Import the client config, with no token at all.
	h2 := c.ClaimHome(t, alice)
	file := downloadClientConfig(t, c, alice, h2.Slug)
	tampered := c.ClientConfigFile(t, h2, func(cc *proto.ClientConfig) {
		cc.SSH.HostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvGW3Ju0VYnT6o4xBDpVZb5hCuoE4oSy6QOOy0Jy5Yo"
	})
	u.fails("this key is not "+h2.Slug+"'s", "import", file, "--private-key", other, "--output", bad)
	u.fails("is not the one the cloud's API gives", "import", tampered, "--private-key", h2.KeyPath, "--output", bad)
	if _, err := os.Stat(bad); err == nil {
		t.Fatal("a refused register or import left a profile")
	}
	imported := filepath.Join(t.TempDir(), "imported")
	if out := u.must("import", file, "--private-key", h2.KeyPath, "--output", imported); !strings.Contains(out, "imported home "+h2.Slug) {
		t.Errorf("import: %s", out)
	}

	var homes []proto.Home
	c.Do(t, alice.Token, "GET", "/api/v1/homes", nil, &homes)
	if len(homes) != 2 {
		t.Errorf("alice has %d homes, want the 2 she claimed (adopting claims none)", len(homes))
	}
	for i, p := range []string{adopted, imported} {
		domain := fmt.Sprintf("site%d.example.com", i)
		u.must("--config", p, "domains", "add", domain)
		u.must("--config", p, "expose", "http", "www."+domain, "--to", web(t, "svc"+domain))
		u.console(p)
		u.waitUp(p, 1)
		if got, err := visit(t, c, "www."+domain); err != nil || !strings.HasPrefix(got, "svc"+domain) {
			t.Errorf("%s: through the cloud: %q %v", p, got, err)
		}
	}
}

// TestReleaseArchivesTheProfile: `home release` asks for the home's name,
// refuses while a console runs, releases the home (the cloud lists it no
// more, its names answer no more) and archives the profile, keys kept,
// where no command picks it up again.
func TestReleaseArchivesTheProfile(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	alice := c.CreateUser(t, "alice")
	u := newUser(t)
	profile := register(u, c, alice.Token, filepath.Join(u.profiles, "mine"))
	u.must("domains", "add", "example.com")
	u.must("expose", "http", "web.example.com", "--to", web(t, "alice-web"))
	_, stop := u.console(profile)
	u.waitUp(profile, 1)
	if _, err := visit(t, c, "web.example.com"); err != nil {
		t.Fatal(err)
	}
	u.fails("stop it first", "release", "--yes")
	stop()
	p, err := config.Load(profile)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := u.runIn("not-the-name\n", "release"); err == nil || !strings.Contains(out, "not confirmed") {
		t.Fatalf("release with a wrong confirmation: %v\n%s", err, out)
	}
	out, err := u.runIn(p.Cloud.Home+"\n", "release")
	if err != nil {
		t.Fatalf("release: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`archived in (\S+)`).FindStringSubmatch(out)
	if m == nil || !strings.HasPrefix(m[1], profile+".released-") {
		t.Fatalf("release did not say where the profile went: %s", out)
	}
	for _, f := range []string{"config.yaml", "id_ed25519", "id_ed25519.pub", "certs"} {
		if _, err := os.Stat(filepath.Join(m[1], f)); err != nil {
			t.Errorf("the archive lacks %s: %v", f, err)
		}
	}
	if _, err := os.Stat(profile); err == nil {
		t.Error("the profile directory is still in place")
	}
	var homes []proto.Home
	c.Do(t, alice.Token, "GET", "/api/v1/homes", nil, &homes)
	if len(homes) != 0 {
		t.Errorf("the cloud still lists %v", homes)
	}
	if _, err := visit(t, c, "web.example.com"); err == nil {
		t.Error("the released home's name still answers")
	}
	u.fails("no profile yet", "status")
}

// TestRotateKeyKeepsTheAgentConnected: `home rotate-key` with a console
// running gives the home a new key, the cloud has it, the old one stops
// working, and the console reconnects with the new one by itself: the same
// process serves the same name afterwards. A rotation interrupted after
// the cloud took the key is finished by the next command.
func TestRotateKeyKeepsTheAgentConnected(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	alice := c.CreateUser(t, "alice")
	u := newUser(t)
	profile := register(u, c, alice.Token, filepath.Join(t.TempDir(), "p"))
	u.must("--config", profile, "domains", "add", "example.com")
	u.must("--config", profile, "expose", "http", "web.example.com", "--to", web(t, "alice-web"))
	_, stop := u.console(profile)
	before := u.waitUp(profile, 1)
	p, err := config.Load(profile)
	if err != nil {
		t.Fatal(err)
	}
	oldSigner, err := p.Signer()
	if err != nil {
		t.Fatal(err)
	}

	out := u.must("--config", profile, "rotate-key")
	if !strings.Contains(out, "the running console reconnected with it") {
		t.Errorf("rotate-key: %s", out)
	}
	newPub, _ := os.ReadFile(filepath.Join(profile, "id_ed25519.pub"))
	if cloudKey := homeKey(t, c, alice, p.Cloud.Home); !sameKeyLine(cloudKey, string(newPub)) {
		t.Fatalf("the cloud has %q, the profile %q", cloudKey, newPub)
	}
	if _, err := os.Stat(filepath.Join(profile, "id_ed25519.new")); err == nil {
		t.Error("id_ed25519.new left behind")
	}
	oldClient, _ := p.CloudClientAs(oldSigner)
	if _, err := oldClient.Home(context.Background(), p.Cloud.Home); !cloudapi.IsStatus(err, http.StatusUnauthorized) {
		t.Errorf("the old key still signs for the home: %v", err)
	}
	// Up again on a new connection: one the cloud accepted with the new key.
	if after := u.waitUp(profile, 1); !after.Tunnel.Since.After(before.Tunnel.Since) || after.Tunnel.State != "connected" {
		t.Errorf("the console did not reconnect: tunnel %+v before, %+v after", before.Tunnel, after.Tunnel)
	}
	if got, err := visit(t, c, "web.example.com"); err != nil || !strings.HasPrefix(got, "alice-web") {
		t.Fatalf("after the rotation, through the same console: %q %v", got, err)
	}
	stop()

	// Interrupted after the cloud took the new key: the next command
	// finds KEY.new, sees the cloud accepts it, and makes it the key.
	pending := filepath.Join(profile, "id_ed25519.new")
	line, err := keys.Generate(pending, "test", false)
	if err != nil {
		t.Fatal(err)
	}
	if st := c.Do(t, alice.Token, "PATCH", "/api/v1/homes/"+p.Cloud.Home, proto.PatchHomeRequest{PublicKey: &line}, nil); st != http.StatusOK {
		t.Fatalf("PATCH the pending key: %d", st)
	}
	if out := u.must("--config", profile, "domains", "list"); !strings.Contains(out, "finished an interrupted key rotation") {
		t.Errorf("the interrupted rotation was not finished: %s", out)
	}
	if pub, _ := os.ReadFile(filepath.Join(profile, "id_ed25519.pub")); !sameKeyLine(string(pub), line) {
		t.Errorf("the key is %q, want the one the cloud took %q", pub, line)
	}
	// Interrupted before the cloud took it: the pending key is dropped.
	if _, err := keys.Generate(pending, "test", false); err != nil {
		t.Fatal(err)
	}
	u.must("--config", profile, "rotate-key")
	if _, err := os.Stat(pending); err == nil {
		t.Error("a pending key the cloud never took is still there")
	}
	u.console(profile)
	u.waitUp(profile, 1)
	if got, err := visit(t, c, "web.example.com"); err != nil || !strings.HasPrefix(got, "alice-web") {
		t.Fatalf("after two more rotations: %q %v", got, err)
	}
}

func homeKey(t *testing.T, c *hometest.Cloud, u *hometest.User, slug string) string {
	t.Helper()
	var h proto.Home
	if st := c.Do(t, u.Token, "GET", "/api/v1/homes/"+slug, nil, &h); st != http.StatusOK {
		t.Fatalf("GET home: %d", st)
	}
	return h.PublicKey
}

func sameKeyLine(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	return len(fa) >= 2 && len(fb) >= 2 && fa[0] == fb[0] && fa[1] == fb[1]
}

// TestConnectFindsPrivateMappingsWithTheHomesKey: `home connect` on one
// home reaches a private mapping of another home of the same account,
// found through GET /api/v1/private-mappings signed by the home, with the
// account's tokens all revoked.
func TestConnectFindsPrivateMappingsWithTheHomesKey(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	alice := c.CreateUser(t, "alice")
	u := newUser(t)
	gpu := register(u, c, alice.Token, filepath.Join(t.TempDir(), "gpu"))
	laptop := register(u, c, alice.Token, filepath.Join(t.TempDir(), "laptop"))
	u.must("--config", gpu, "expose", "tcp", "--private", "--name", "gpu-ui", "--to", web(t, "gpu-ui"))
	gp, err := config.Load(gpu)
	if err != nil {
		t.Fatal(err)
	}
	var ms []proto.Mapping
	c.Do(t, alice.Token, "GET", "/api/v1/homes/"+gp.Cloud.Home+"/mappings", nil, &ms)
	if len(ms) != 1 || !ms[0].Private {
		t.Fatalf("mappings of the gpu home: %+v", ms)
	}
	revokeAllTokens(t, c, alice)
	u.console(gpu)
	u.waitUp(gpu, 1)
	u.console(laptop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _ := u.run("--config", laptop, "status", "--json")
		if strings.Contains(out, `"state": "connected"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the laptop's tunnel did not connect:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}

	local := fmt.Sprintf("127.0.0.1:%d", hometest.FreePort(t))
	cmd := exec.Command(homeBin, "--config", laptop, "connect", gp.Cloud.Home+"/gpu-ui", "--local", local)
	cmd.Env = append(os.Environ(), "HOMEPORT_PROFILES="+u.profiles)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "private mapping") {
		t.Fatalf("home connect did not start: %q %v\n%s", line, err, stderr.String())
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + local + "/")
	if err != nil {
		t.Fatalf("through home connect: %v\n%s", err, stderr.String())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.HasPrefix(string(body), "gpu-ui") {
		t.Errorf("through home connect: %q", body)
	}
	u.fails("no private mapping named 999999; your account has: "+gp.Cloud.Home+"/gpu-ui", "--config", laptop, "connect", "999999", "--local", "127.0.0.1:0")
}

// downloadClientConfig logs in to the cloud's web UI as u and downloads
// the client config of home slug, as "Download client config" does.
func downloadClientConfig(t *testing.T, c *hometest.Cloud, u *hometest.User, slug string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(path string) []byte {
		resp, err := browser.Get(c.APIURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", path, resp.Status, b)
		}
		return b
	}
	m := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindSubmatch(get("/login"))
	if m == nil {
		t.Fatal("the login page has no CSRF field")
	}
	req, _ := http.NewRequest("POST", c.APIURL+"/login", strings.NewReader(url.Values{"username": {u.Name}, "password": {u.Password}, "_csrf": {string(m[1])}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.APIURL)
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "Dashboard") {
		t.Fatalf("web login as %s: %s\n%s", u.Name, resp.Status, page)
	}
	file := filepath.Join(t.TempDir(), "homeport-"+slug+".yaml")
	if err := os.WriteFile(file, get("/homes/"+slug+"/client.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}
