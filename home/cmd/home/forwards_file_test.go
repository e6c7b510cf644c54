package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/hometest"
)

// These tests treat config.yaml as the user does: a file they edit by hand,
// copy and keep in git, beside the CLI and the console that edit it too.

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitVisit requests host through the cloud, as a new visitor each time,
// until the answer starts with want (bounded): the console picks hand edits
// up on its own. (A visitor's open keep-alive connection stays with the
// target it was opened to.)
func waitVisit(t *testing.T, c *hometest.Cloud, host, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		got, err := "", error(nil)
		req, _ := http.NewRequest("GET", "http://"+c.HTTPAddr+"/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got = string(b)
		}
		if err == nil && strings.HasPrefix(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %q within 15 s: %q %v", host, want, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHandEditedForwardGoesLive: a forward written by hand into
// config.yaml is created on the cloud by `home sync-tunnels` and served;
// the CLI's own edits of the file keep the user's comments and order.
func TestHandEditedForwardGoesLive(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	u := newUser(t)
	profile := register(u, c, c.CreateUser(t, "alice").Token, filepath.Join(t.TempDir(), "p"))
	u.must("--config", profile, "domains", "add", "example.com")
	cfg := filepath.Join(profile, "config.yaml")
	writeFile(t, cfg, readFile(t, cfg)+"# what this home exposes\nforwards:\n  # the wiki, first\n  - scheme: http\n    host: wiki.example.com\n    target: "+web(t, "wiki")+"\n")

	out := u.must("--config", profile, "sync-tunnels")
	if !strings.Contains(out, "created  http://wiki.example.com") || !strings.Contains(out, "in sync") {
		t.Fatalf("sync-tunnels after a hand edit: %s", out)
	}
	u.console(profile)
	u.waitUp(profile, 1)
	waitVisit(t, c, "wiki.example.com", "wiki")

	u.must("--config", profile, "expose", "http", "web.example.com", "--to", web(t, "web"))
	u.waitUp(profile, 2)
	waitVisit(t, c, "web.example.com", "web")
	u.must("--config", profile, "forwards", "close", "1")
	b := readFile(t, cfg)
	for _, keep := range []string{"# what this home exposes", "# the wiki, first"} {
		if !strings.Contains(b, keep) {
			t.Errorf("the CLI's edits lost the comment %q:\n%s", keep, b)
		}
	}
	if w, e, x := strings.Index(b, "wiki.example.com"), strings.Index(b, "enabled: false"), strings.Index(b, "web.example.com"); !(w < e && e < x) {
		t.Errorf("order not kept (wiki closed, then web):\n%s", b)
	}
	if st, _ := os.Stat(cfg); st.Mode().Perm() != 0o600 {
		t.Errorf("config.yaml mode %o", st.Mode().Perm())
	}
	if _, err := visit(t, c, "wiki.example.com"); err == nil {
		t.Error("the closed wiki still answers")
	}
}

// TestInvalidHandEditKeepsServing: with a console running, an edit that
// breaks a forward is refused with the field named (status, reload and
// sync-tunnels say so, the latter two exit non-zero) and the running forward
// keeps serving; a valid edit is then picked up without any command.
func TestInvalidHandEditKeepsServing(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	u := newUser(t)
	profile := register(u, c, c.CreateUser(t, "alice").Token, filepath.Join(t.TempDir(), "p"))
	u.must("--config", profile, "domains", "add", "example.com")
	one := web(t, "one")
	u.must("--config", profile, "expose", "http", "web.example.com", "--to", one)
	u.console(profile)
	u.waitUp(profile, 1)
	waitVisit(t, c, "web.example.com", "one")

	cfg := filepath.Join(profile, "config.yaml")
	good := readFile(t, cfg)
	writeFile(t, cfg, strings.Replace(good, "target: "+one, "target: "+one+"99", 1))
	deadline := time.Now().Add(15 * time.Second)
	for u.status(profile).ConfigError == "" {
		if time.Now().After(deadline) {
			t.Fatal("the running console did not report the invalid edit within 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := u.status(profile)
	if !strings.Contains(st.ConfigError, "forwards[0].target:") {
		t.Errorf("the refusal does not name the field: %q", st.ConfigError)
	}
	if len(st.Forwards) != 1 || !st.Forwards[0].Up || st.Forwards[0].Target != one {
		t.Errorf("the running forward changed: %+v", st.Forwards)
	}
	if out := u.must("--config", profile, "status"); !strings.Contains(out, "config.yaml refused") || !strings.Contains(out, "forwards[0].target:") {
		t.Errorf("home status does not show the refusal: %s", out)
	}
	u.fails("forwards[0].target:", "--config", profile, "reload")
	u.fails("forwards[0].target:", "--config", profile, "sync-tunnels")
	u.fails("forwards[0].target:", "--config", profile, "forwards", "close", "1")
	waitVisit(t, c, "web.example.com", "one")

	two := web(t, "two")
	writeFile(t, cfg, strings.Replace(good, "target: "+one, "target: "+two, 1))
	deadline = time.Now().Add(15 * time.Second)
	for st := u.status(profile); len(st.Forwards) != 1 || st.Forwards[0].Target != two; st = u.status(profile) {
		if time.Now().After(deadline) {
			t.Fatalf("the running console did not take the valid edit within 15 s: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitVisit(t, c, "web.example.com", "two")
	if st := u.status(profile); st.ConfigError != "" {
		t.Errorf("the refusal outlived the fix: %q", st.ConfigError)
	}
}

// TestProfileCopiedWithoutItsCache: the cache is only cache: a copy of the
// profile without it finds its mappings on the cloud again (none created or
// removed, private ones included) and serves.
func TestProfileCopiedWithoutItsCache(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	u := newUser(t)
	profile := register(u, c, c.CreateUser(t, "alice").Token, filepath.Join(t.TempDir(), "p"))
	u.must("--config", profile, "domains", "add", "example.com")
	u.must("--config", profile, "expose", "http", "web.example.com", "--to", web(t, "web"))
	u.must("--config", profile, "expose", "tcp", "--private", "--name", "db", "--to", web(t, "db"))
	if _, err := os.Stat(filepath.Join(profile, "cache", "forwards.json")); err != nil {
		t.Fatalf("no cache in the profile: %v", err)
	}
	copied := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", profile, copied).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(copied, "cache")); err != nil {
		t.Fatal(err)
	}
	out := u.must("--config", copied, "sync-tunnels")
	if strings.Count(out, "kept") != 2 || strings.Contains(out, "created") || strings.Contains(out, "removed") {
		t.Fatalf("sync of the copy without cache changed the cloud: %s", out)
	}
	if a, b := readFile(t, filepath.Join(profile, "cache", "forwards.json")), readFile(t, filepath.Join(copied, "cache", "forwards.json")); a != b {
		t.Errorf("the rebuilt cache differs:\n%s\nwas\n%s", b, a)
	}
	u.console(copied)
	u.waitUp(copied, 2)
	waitVisit(t, c, "web.example.com", "web")
}

// TestOldProfileIsConvertedOnFirstStart: a profile in the format before
// forwards: (database: home.db, the entries in SQLite with gorm's schema)
// is converted by the first command and works: synced, served, the
// database kept as home.db.bak.
func TestOldProfileIsConvertedOnFirstStart(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	u := newUser(t)
	profile := register(u, c, c.CreateUser(t, "alice").Token, filepath.Join(t.TempDir(), "p"))
	u.must("--config", profile, "domains", "add", "example.com")
	db := filepath.Join(profile, "home.db")
	// The schema as the gorm store created it (a database it wrote).
	writeFile(t, db, readFile(t, filepath.Join("..", "..", "internal", "config", "testdata", "legacy", "clean", "home.db")))
	sql := "DELETE FROM entries; INSERT INTO entries (scheme, host, public_port, private, name, target, mode, proxy_protocol, enabled, deploy_path, mapping_id, tunnel_port, sync_error) VALUES " +
		"('http', 'web.example.com', 0, 0, '', '" + web(t, "old-web") + "', '', 0, 1, '', 0, 0, ''), " +
		"('tcp', '', 0, 1, 'db', '" + web(t, "old-db") + "', '', 0, 1, '', 0, 0, '');"
	if out, err := exec.Command("sqlite3", db, sql).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v %s", err, out)
	}
	cfg := filepath.Join(profile, "config.yaml")
	writeFile(t, cfg, regexp.MustCompile(`(?m)^key: .*$`).ReplaceAllString(readFile(t, cfg), "$0\ndatabase: home.db"))

	out := u.must("--config", profile, "sync-tunnels")
	if !strings.Contains(out, "converted home.db: its 2 forwards are in") || !strings.Contains(out, "created  http://web.example.com") || !strings.Contains(out, "in sync") {
		t.Fatalf("first command on the old profile: %s", out)
	}
	if b := readFile(t, cfg); strings.Contains(b, "database:") || !strings.Contains(b, "name: db") {
		t.Errorf("config.yaml after the conversion:\n%s", b)
	}
	if _, err := os.Stat(db + ".bak"); err != nil {
		t.Errorf("the old database was not kept: %v", err)
	}
	u.console(profile)
	u.waitUp(profile, 2)
	waitVisit(t, c, "web.example.com", "old-web")
}
