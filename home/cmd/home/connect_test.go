package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/proto"
)

// connecting is a running `home connect`.
type connecting struct {
	local  string
	stderr *strings.Builder
}

// connect starts `home --config profile connect ref` on a free local port
// and waits for its "private mapping ... on" line; it stops with the test.
func (u *user) connect(profile, ref string) connecting {
	u.t.Helper()
	local := fmt.Sprintf("127.0.0.1:%d", hometest.FreePort(u.t))
	cmd := exec.Command(homeBin, "--config", profile, "connect", ref, "--local", local)
	cmd.Env = append(os.Environ(), "HOMEPORT_PROFILES="+u.profiles)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		u.t.Fatal(err)
	}
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	u.t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "private mapping") {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		u.t.Fatalf("home connect %s did not start: %q %v\n%s", ref, line, err, stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	return connecting{local: local, stderr: stderr}
}

// get fetches / through a running connect, on a new connection.
func (c connecting) get(t *testing.T) string {
	t.Helper()
	// A new connection each time: a kept-alive one would go on reaching
	// whatever it reached when it was opened.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + c.local + "/")
	if err != nil {
		t.Fatalf("through home connect: %v\n%s", err, c.stderr.String())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestConnectByName: a private forward is reached by its name, `home
// connect NAME` on its own home and `home connect SLUG/NAME` on another home
// of the account; the cloud, `home forwards list` and `home status` show the
// same name. Closing and opening the forward, or a sync --disconnect and a
// sync, give the mapping a new ID but the same name: the same command still
// reaches it, and so does a connect left running. An unknown name is an
// error listing the names there are; an ID still works, with a warning.
func TestConnectByName(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	alice := c.CreateUser(t, "alice")
	u := newUser(t)
	gpu := register(u, c, alice.Token, filepath.Join(t.TempDir(), "gpu"))
	laptop := register(u, c, alice.Token, filepath.Join(t.TempDir(), "laptop"))
	exposed := u.must("--config", gpu, "expose", "tcp", "--private", "--name", "gpu-ui", "--to", web(t, "gpu-ui"))
	u.must("--config", laptop, "expose", "tcp", "--private", "--name", "notes", "--to", web(t, "notes"))
	gp, err := config.Load(gpu)
	if err != nil {
		t.Fatal(err)
	}
	slug := gp.Cloud.Home
	if !strings.Contains(exposed, "home connect gpu-ui (on this home), home connect "+slug+"/gpu-ui") {
		t.Errorf("expose does not say how to reach the private forward:\n%s", exposed)
	}
	mapping := func() proto.Mapping { // gpu-ui's
		t.Helper()
		var ms []proto.Mapping
		c.Do(t, alice.Token, "GET", "/api/v1/homes/"+slug+"/mappings", nil, &ms)
		for _, m := range ms {
			if m.Name == "gpu-ui" {
				return m
			}
		}
		t.Fatalf("no mapping named gpu-ui on the gpu home: %+v", ms)
		return proto.Mapping{}
	}
	first := mapping()
	if first.Name != "gpu-ui" || !first.Private {
		t.Fatalf("the cloud's mapping of the private forward: %+v, want private and named gpu-ui", first)
	}
	if out := u.must("--config", gpu, "forwards", "list"); !strings.Contains(out, "private:gpu-ui") {
		t.Errorf("forwards list does not show the name:\n%s", out)
	}

	u.console(gpu)
	u.console(laptop)
	u.waitUp(gpu, 1)
	u.waitUp(laptop, 1)
	if out := u.must("--config", gpu, "status"); !strings.Contains(out, "private:gpu-ui") {
		t.Errorf("status does not show the name:\n%s", out)
	}

	if got := u.connect(gpu, "gpu-ui").get(t); !strings.HasPrefix(got, "gpu-ui") {
		t.Errorf("home connect gpu-ui on the gpu home: %q", got)
	}
	running := u.connect(laptop, slug+"/gpu-ui")
	if got := running.get(t); !strings.HasPrefix(got, "gpu-ui") {
		t.Errorf("home connect %s/gpu-ui on the laptop: %q", slug, got)
	}
	if got := u.connect(laptop, "notes").get(t); !strings.HasPrefix(got, "notes") {
		t.Errorf("home connect notes on the laptop: %q", got)
	}

	out := u.fails("has no private mapping named nope", "--config", laptop, "connect", "nope", "--local", "127.0.0.1:0")
	if !strings.Contains(out, "notes, "+slug+"/gpu-ui") && !strings.Contains(out, slug+"/gpu-ui, notes") {
		t.Errorf("the error does not list the names there are (notes, %s/gpu-ui):\n%s", slug, out)
	}
	u.fails(`home "nohome" has no private mapping named gpu-ui`, "--config", laptop, "connect", "nohome/gpu-ui", "--local", "127.0.0.1:0")

	byID := u.connect(laptop, fmt.Sprint(first.ID))
	if got := byID.get(t); !strings.HasPrefix(got, "gpu-ui") {
		t.Errorf("home connect %d: %q", first.ID, got)
	}
	if !strings.Contains(byID.stderr.String(), "deprecated") || !strings.Contains(byID.stderr.String(), "home connect "+slug+"/gpu-ui") {
		t.Errorf("connect by ID does not say IDs are deprecated and which name to use: %q", byID.stderr.String())
	}

	// Close and open, with another forward taking the tunnel port in
	// between: a new mapping on another port, the same name.
	u.must("--config", gpu, "forwards", "close", "1")
	u.must("--config", gpu, "expose", "tcp", "--private", "--name", "jupyter", "--to", web(t, "jupyter"))
	u.must("--config", gpu, "forwards", "open", "1")
	u.waitUp(gpu, 2)
	reopened := mapping()
	if reopened.ID == first.ID || reopened.TunnelPort == first.TunnelPort {
		t.Fatalf("after close and open: mapping %+v, want a new ID and tunnel port (first %+v)", reopened, first)
	}
	if got := u.connect(laptop, slug+"/gpu-ui").get(t); !strings.HasPrefix(got, "gpu-ui") {
		t.Errorf("home connect %s/gpu-ui after close and open: %q", slug, got)
	}
	if got := running.get(t); !strings.HasPrefix(got, "gpu-ui") {
		t.Errorf("the connect left running across close and open: %q", got)
	}
	u.fails("has no private mapping named "+fmt.Sprint(first.ID), "--config", laptop, "connect", fmt.Sprint(first.ID), "--local", "127.0.0.1:0")

	// A sync that disconnects, then one that connects: the same name again.
	u.must("--config", gpu, "sync-tunnels", "--disconnect")
	u.must("--config", gpu, "sync-tunnels")
	u.waitUp(gpu, 2)
	if m := mapping(); m.Name != "gpu-ui" {
		t.Errorf("after sync --disconnect and sync: %+v", m)
	}
	if got := u.connect(gpu, "gpu-ui").get(t); !strings.HasPrefix(got, "gpu-ui") {
		t.Errorf("home connect gpu-ui after sync --disconnect and sync: %q", got)
	}
	if got := running.get(t); !strings.HasPrefix(got, "gpu-ui") {
		t.Errorf("the connect left running across sync --disconnect and sync: %q", got)
	}
}
