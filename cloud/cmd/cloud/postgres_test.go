package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/store/pgtest"
	"homeport.dev/proto"
	"homeport.dev/proto/testnet"
)

// TestTheCLIRunsOnPostgreSQL: an operator with --db postgres://... creates
// the first admin with `cloud users`, serves (the admin trades her password
// for a token), and `cloud check` passes, all on one PostgreSQL database and
// without a SQLite file in the data directory (real binary).
func TestTheCLIRunsOnPostgreSQL(t *testing.T) {
	pg := pgtest.New()
	t.Cleanup(pg.Stop)
	dsn := pg.DB(t)
	bin := cloudtest.Binary(t)
	data := t.TempDir()
	create := exec.Command(bin, "users", "create", "root", "--email", "root@example.com", "--admin", "--approved", "--data", data, "--db", dsn)
	create.Stdin = strings.NewReader("a long passphrase\n")
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("users create: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "users", "list", "--data", data, "--db", dsn).CombinedOutput(); err != nil || !bytes.Contains(out, []byte("root")) {
		t.Fatalf("users list: %v\n%s", err, out)
	}

	apiAddr := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	flags := []string{"--data", data, "--db", dsn, "--haproxy", "off", "--shape-dev", "off", "--public-host", "127.0.0.1",
		"--api-addr", apiAddr, "--ssh-addr", "127.0.0.1:0", "--metrics-addr", "off"}
	serve := exec.Command(bin, append([]string{"serve"}, flags...)...)
	var stderr bytes.Buffer
	serve.Stderr = &stderr
	stdout, _ := serve.StdoutPipe()
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		serve.Process.Signal(syscall.SIGTERM)
		serve.Wait()
	}()
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.HasPrefix(line, "cloud ready")
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("cloud serve did not start:\n%s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("cloud serve not ready after 30 s:\n%s", stderr.String())
	}
	body, _ := json.Marshal(proto.TokenRequest{Username: "root", Password: "a long passphrase"})
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post("http://"+apiAddr+proto.APIPrefix+"/auth/token", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("the admin made by `cloud users --db` cannot log in to `cloud serve --db`: %d", resp.StatusCode)
	}

	if out, err := exec.Command(bin, append([]string{"check"}, flags...)...).CombinedOutput(); err != nil {
		t.Errorf("cloud check: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(data, "cloud.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a SQLite database was made in the data directory (%v)", err)
	}
}
