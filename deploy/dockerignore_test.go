package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dockerignore is a parsed .dockerignore: the subset of Docker's syntax the
// project uses (patterns with '*', '?', '**' segments; no '!' exceptions).
type dockerignore [][]string

func readDockerignore(file string) (dockerignore, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var d dockerignore
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		d = append(d, strings.Split(strings.Trim(filepath.ToSlash(filepath.Clean(p)), "/"), "/"))
	}
	return d, sc.Err()
}

// excludes reports whether the context leaves rel out: a pattern matches it
// or one of its parent directories.
func (d dockerignore) excludes(rel string) bool {
	segs := strings.Split(filepath.ToSlash(rel), "/")
	for _, p := range d {
		for n := 1; n <= len(segs); n++ {
			if matchSegments(p, segs[:n]) {
				return true
			}
		}
	}
	return false
}

func matchSegments(pat, segs []string) bool {
	if len(pat) == 0 {
		return len(segs) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(segs); i++ {
			if matchSegments(pat[1:], segs[i:]) {
				return true
			}
		}
		return false
	}
	if len(segs) == 0 {
		return false
	}
	ok, _ := filepath.Match(pat[0], segs[0])
	return ok && matchSegments(pat[1:], segs[1:])
}

// TestDockerignoreKeepsStateOut: the build context never carries git
// history, a demo's or a cloud's state (admin password, database, SSH host
// key) or built test binaries, and keeps every source the images build from.
func TestDockerignoreKeepsStateOut(t *testing.T) {
	d, err := readDockerignore(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		".git/config", ".git", "demo-data/admin-password", "demo-data/cloud/cloud.db",
		"cloud-data/ssh_host_ed25519_key", "cloud/cloud-data/cloud.db", "home/internal/agent/agent.test",
		"bin/cloud",
	} {
		if !d.excludes(p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
	for _, p := range []string{
		"go.work", "cloud/go.mod", "cloud/cmd/cloud/main.go", "home/internal/console/templates/dashboard.html",
		"third_party/golang.org/x/crypto/ssh/client.go", "proto/testnet/testnet.go", "deploy/Dockerfile.cloud",
	} {
		if d.excludes(p) {
			t.Errorf(".dockerignore leaves out %s, which the images build from", p)
		}
	}
}
