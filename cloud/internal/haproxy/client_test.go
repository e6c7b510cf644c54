package haproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// snapshot returns the live content of every map.
func (e *testEnv) snapshot(t testing.TB) map[Map][]Entry {
	t.Helper()
	s := make(map[Map][]Entry)
	for _, m := range Maps() {
		entries, err := e.client.ShowMap(context.Background(), e.mapName(m))
		if err != nil {
			t.Fatalf("ShowMap(%s): %v", m, err)
		}
		s[m] = entries
	}
	return s
}

// Nothing that could be read as another command, argument or comment may
// reach the socket: every call fails with ErrInvalid and no map changes.
// Not parallel: it compares whole maps before and after.
func TestInjectionRejected(t *testing.T) {
	e := needEnv(t)
	ctx := context.Background()
	_, port := e.listenTunnel(t)
	p := strconv.Itoa(port)
	e.addRoute(t, MapHTTPS, uniqueHost(), port)
	e.addRoute(t, MapHTTP, uniqueHost(), port)
	e.addRoute(t, MapTCP, "1", port)
	before := e.snapshot(t)

	name := e.mapName(MapHTTPS)
	bad := []string{
		"x;clear map " + name,
		"a b",
		"a\nclear map " + name,
		"a\r\nclear map " + name,
		"a\tb",
		"",
		" ",
		"App.example.com",
		"#1",
		"a\\;b",
		"-a.example.com",
		"a..example.com",
		"a.example.com.",
		"a_b.example.com",
		"0",
		"080",
		"65536",
		"+80",
		"a\x00b",
		"é.example.com",
		strings.Repeat("a", 64) + ".example.com",
		strings.Repeat("a.", 127) + "ab",
		"<<",
	}
	for _, s := range bad {
		for _, m := range Maps() {
			n := e.mapName(m)
			calls := map[string]error{
				"AddMap key":       e.client.AddMap(ctx, n, s, p),
				"AddMap value":     e.client.AddMap(ctx, n, "ok.example.com", s),
				"SetMap key":       e.client.SetMap(ctx, n, s, p),
				"SetMap value":     e.client.SetMap(ctx, n, "ok.example.com", s),
				"DelMap key":       e.client.DelMap(ctx, n, s),
				"ReplaceMap key":   e.client.ReplaceMap(ctx, n, []Entry{{"ok.example.com", p}, {s, p}}),
				"ReplaceMap value": e.client.ReplaceMap(ctx, n, []Entry{{"ok.example.com", p}, {"ok2.example.com", s}}),
			}
			for call, err := range calls {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("%s(%s, %q) = %v, want ErrInvalid", call, m, s, err)
				}
			}
		}
	}
	for _, n := range []string{
		name + ";clear map " + name,
		name + " x",
		name + "\nclear map " + name,
		"https",
		"#1;clear map #1",
		"#",
		"@1 " + name,
		"",
	} {
		errs := []error{
			e.client.AddMap(ctx, n, "ok.example.com", p),
			e.client.ClearMap(ctx, n),
			e.client.DelMap(ctx, n, "ok.example.com"),
			e.client.ReplaceMap(ctx, n, nil),
		}
		if _, err := e.client.ShowMap(ctx, n); true {
			errs = append(errs, err)
		}
		for i, err := range errs {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("call %d with map name %q = %v, want ErrInvalid", i, n, err)
			}
		}
	}
	if after := e.snapshot(t); !reflect.DeepEqual(after, before) {
		t.Errorf("maps changed:\nbefore %v\nafter  %v", before, after)
	}
}

// Not parallel: it replaces the whole http map.
func TestReplaceMapLoadsInChunks(t *testing.T) {
	e := needEnv(t)
	ctx := context.Background()
	name := e.mapName(MapHTTP)
	ln, port := e.listenTunnel(t)
	serveHTTP(t, ln, "bulk")
	old := uniqueHost()
	e.addRoute(t, MapHTTP, old, port)
	before, err := e.client.ShowMap(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.client.ReplaceMap(ctx, name, before); err != nil {
			t.Errorf("restore: %v", err)
		}
	})

	const n = 20000 // ~600 KB of payload: dozens of chunks
	entries := make([]Entry, n)
	for i := range entries {
		entries[i] = Entry{Key: fmt.Sprintf("h%05d.bulk-load-test.example.com", i), Value: strconv.Itoa(port)}
	}
	start := time.Now()
	if err := e.client.ReplaceMap(ctx, name, entries); err != nil {
		t.Fatalf("ReplaceMap: %v", err)
	}
	t.Logf("ReplaceMap of %d entries took %v", n, time.Since(start))

	got, err := e.client.ShowMap(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, entries) {
		t.Fatalf("show map returned %d entries; want the %d loaded, in order", len(got), n)
	}
	if resp, body, _ := httpGet(t, e, "h12345.bulk-load-test.example.com", "/", nil); resp.StatusCode != 200 {
		t.Errorf("loaded route: status %d %q", resp.StatusCode, body)
	}
	if resp, _, _ := httpGet(t, e, old, "/", nil); resp.StatusCode != 503 {
		t.Errorf("route absent from the replacement still answers: status %d", resp.StatusCode)
	}
}

func TestReplyErrors(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ctx := context.Background()
	missing := filepath.Join(e.dir, "missing.map")

	_, err := e.client.ShowMap(ctx, missing)
	var re *ReplyError
	if !errors.As(err, &re) || !strings.Contains(re.Reply, "Unknown map identifier") {
		t.Errorf("ShowMap(missing) = %v; want a ReplyError quoting HAProxy", err)
	}
	if err := e.client.AddMap(ctx, missing, "a.example.com", "1"); !errors.As(err, &re) {
		t.Errorf("AddMap(missing) = %v; want a ReplyError", err)
	}
	if err := e.client.ReplaceMap(ctx, missing, []Entry{{"a.example.com", "1"}}); !errors.As(err, &re) {
		t.Errorf("ReplaceMap(missing) = %v; want a ReplyError", err)
	}
	host := uniqueHost()
	if err := e.client.SetMap(ctx, e.mapName(MapHTTP), host, "1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetMap(absent key) = %v, want ErrNotFound", err)
	}
	if err := e.client.DelMap(ctx, e.mapName(MapHTTP), host); !errors.Is(err, ErrNotFound) {
		t.Errorf("DelMap(absent key) = %v, want ErrNotFound", err)
	}
}

func TestSetMapChangesRoute(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ctx := context.Background()
	host := uniqueHost()
	lnA, portA := e.listenTunnel(t)
	lnB, portB := e.listenTunnel(t)
	serveHTTP(t, lnA, "a")
	serveHTTP(t, lnB, "b")
	e.addRoute(t, MapHTTP, host, portA)
	if err := e.client.SetMap(ctx, e.mapName(MapHTTP), host, strconv.Itoa(portB)); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := httpGet(t, e, host, "/", nil); !strings.Contains(body, "tunnel=b ") {
		t.Errorf("after SetMap the request reached %q, want tunnel b", body)
	}
}

func TestInfo(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	info, err := e.client.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.Version, "2.") && !strings.HasPrefix(info.Version, "3.") || info.Pid == 0 {
		t.Errorf("Info = %+v; want a version and the worker pid", info)
	}
}

// A socket that accepts but never answers must not hang a caller.
func TestClientTimeout(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "mute.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	c := &Client{SocketPath: sock, Timeout: 50 * time.Millisecond}
	start := time.Now()
	if _, err := c.Info(context.Background()); err == nil {
		t.Fatal("Info on a mute socket succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Timeout 50ms took %v", d)
	}

	c.Timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := c.ReplaceMap(ctx, "/x.map", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ReplaceMap with an expiring context = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("context deadline 50ms took %v", d)
	}
}

// fakeCLI is a scripted stand-in for the admin socket in non-interactive
// mode; it records every command it receives.
type fakeCLI struct {
	mu       sync.Mutex
	commands []string
	dropAdd  bool // close "add map" connections without a reply, as HAProxy does for oversized input
}

func (f *fakeCLI) serve(t *testing.T) string {
	sock := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			cmd, _ := br.ReadString('\n')
			if strings.HasSuffix(cmd, "<<\n") {
				for {
					line, err := br.ReadString('\n')
					cmd += line
					if line == "\n" || err != nil {
						break
					}
				}
			}
			f.mu.Lock()
			f.commands = append(f.commands, cmd)
			f.mu.Unlock()
			switch {
			case strings.HasPrefix(cmd, "prepare map"):
				io.WriteString(c, "New version created: 7\n\n")
			case strings.HasPrefix(cmd, "add map") && f.dropAdd:
			default:
				io.WriteString(c, "\n")
			}
			c.Close()
		}
	}()
	return sock
}

func (f *fakeCLI) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.commands)
}

func TestReplaceMapChunks(t *testing.T) {
	t.Parallel()
	f := &fakeCLI{}
	c := &Client{SocketPath: f.serve(t)}
	entries := make([]Entry, 3000)
	for i := range entries {
		entries[i] = Entry{Key: fmt.Sprintf("%s%04d.example.com", strings.Repeat("x", 50), i), Value: "20001"}
	}
	if err := c.ReplaceMap(context.Background(), "/m/http.map", entries); err != nil {
		t.Fatal(err)
	}
	var got []Entry
	adds := 0
	cmds := f.recorded()
	for _, cmd := range cmds {
		if !strings.HasPrefix(cmd, "add map @7 /m/http.map <<\n") {
			continue
		}
		adds++
		if len(cmd) > maxPayload {
			t.Errorf("payload of %d bytes exceeds %d", len(cmd), maxPayload)
		}
		for line := range strings.SplitSeq(strings.TrimSpace(cmd), "\n") {
			if k, v, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "add map") {
				got = append(got, Entry{k, v})
			}
		}
	}
	if !slices.Equal(got, entries) || adds < 2 {
		t.Errorf("sent %d entries in %d payloads; want all %d, in order, in several payloads", len(got), adds, len(entries))
	}
	if first, last := cmds[0], cmds[len(cmds)-1]; first != "prepare map /m/http.map\n" || last != "commit map @7 /m/http.map\n" {
		t.Errorf("first/last commands = %q, %q", first, last)
	}
}

// A dropped payload must fail the replace, not pass as a silent success,
// and the uncommitted version must be freed.
func TestReplaceMapDetectsDroppedPayload(t *testing.T) {
	t.Parallel()
	f := &fakeCLI{dropAdd: true}
	c := &Client{SocketPath: f.serve(t)}
	err := c.ReplaceMap(context.Background(), "/m/http.map", []Entry{{"a.example.com", "20001"}})
	if err == nil || !strings.Contains(err.Error(), "without a reply") {
		t.Fatalf("ReplaceMap = %v; want a 'without a reply' error", err)
	}
	cmds := f.recorded()
	for _, cmd := range cmds {
		if strings.HasPrefix(cmd, "commit") {
			t.Errorf("committed after a failed load: %q", cmd)
		}
	}
	if last := cmds[len(cmds)-1]; last != "clear map @7 /m/http.map\n" {
		t.Errorf("last command = %q; want the uncommitted version cleared", last)
	}
}
