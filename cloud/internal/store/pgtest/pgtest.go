// Package pgtest runs a throwaway PostgreSQL server for the tests of one
// package: started on first use from Debian's postgresql binaries, listening
// on a free loopback port (and a unix socket in its temporary directory),
// with one fresh database per caller. TestMain stops it:
//
//	var pg = pgtest.New()
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pg.Stop()
//		os.Exit(code)
//	}
package pgtest

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for CREATE DATABASE

	"homeport.dev/proto/testnet"
)

// install says how to get the server binaries.
const install = "apt-get install postgresql (deploy/install-deps.sh does)"

// Server is one PostgreSQL server, started by the first DB call.
type Server struct {
	once    sync.Once
	missing string // why PostgreSQL cannot run here, when it cannot
	err     error  // why it did not start
	dir     string
	port    int
	cmd     *exec.Cmd

	releasePort func() // the port's reservation (testnet.Reserve)
	exited      chan struct{}
	mu          sync.Mutex
	created     int
}

// Engine is a database a test runs on: its name (the subtest's) and DSN,
// which makes an empty database and returns what store.Open takes.
type Engine struct {
	Name string
	DSN  func(t testing.TB) string
}

// Engines are the two databases a schema or concurrency test runs on: a
// SQLite file in the test's temporary directory and a database of s.
func (s *Server) Engines() []Engine {
	return []Engine{
		{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "cloud.db") }},
		{"postgres", s.DB},
	}
}

// New returns a server that starts when a test first asks for a database.
func New() *Server { return &Server{} }

// DB creates an empty database and returns its URL. When PostgreSQL is not
// installed the test fails under HOMEPORT_TEST_STRICT=1 and is skipped
// otherwise (testnet.Missing).
func (s *Server) DB(t testing.TB) string {
	t.Helper()
	s.once.Do(func() { s.err = s.start() })
	if s.missing != "" {
		testnet.Missing(t, s.missing)
	}
	if s.err != nil {
		t.Fatalf("start PostgreSQL: %v", s.err)
	}
	s.mu.Lock()
	s.created++
	name := fmt.Sprintf("test%d", s.created)
	s.mu.Unlock()
	admin, err := sql.Open("pgx", s.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return s.url(name)
}

func (s *Server) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Main runs a package's tests, then stops the server (if a test started
// it): a package's TestMain is `func TestMain(m *testing.M) { pg.Main(m) }`.
func (s *Server) Main(m *testing.M) {
	code := m.Run()
	s.Stop()
	os.Exit(code)
}

// Stop ends the server and removes its files. It is safe to call when the
// server never started.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown: the data is thrown away
		<-s.exited
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	if s.releasePort != nil {
		s.releasePort()
	}
}

// start runs initdb and postgres as the postgres user when the test runs as
// root (both refuse to run as root), else as the test's own user.
func (s *Server) start() error {
	bin, err := binDir()
	if err != nil {
		s.missing = err.Error()
		return nil
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			s.missing = "PostgreSQL refuses to run as root and there is no postgres user: " + install
			return nil
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir(): the postgres user must reach it, and a socket path
	// must stay short (107 bytes).
	s.dir, err = os.MkdirTemp("", "pgtest")
	if err != nil {
		return err
	}
	if cred != nil {
		if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	data := filepath.Join(s.dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v: %s", err, out)
	}
	ports, release, err := testnet.Reserve(1, 1)
	if err != nil {
		return err
	}
	s.port, s.releasePort = ports.First, release
	// Durability is of no use to a test database; skipping it is most of
	// the start-up and write time.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-k", s.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	// Pdeathsig: a test binary that dies (a panic skips TestMain's Stop)
	// takes its server with it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	logs, err := s.cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	s.exited = make(chan struct{})
	ready := make(chan error, 1)
	go func() {
		ready <- waitReady(logs)
		io.Copy(io.Discard, logs) // keep the server from blocking on a full pipe
		s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = errors.New("postgres did not say it was ready within 30s")
	}
	return err
}

// waitReady reads the server's log until it accepts connections, returning
// the log when it exits first.
func waitReady(logs io.Reader) error {
	var seen []string
	sc := bufio.NewScanner(logs)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "database system is ready to accept connections") {
			return nil
		}
		seen = append(seen, line)
	}
	return fmt.Errorf("postgres exited before it was ready:\n%s", strings.Join(seen, "\n"))
}

// binDir finds the server binaries: Debian keeps them off PATH, in
// /usr/lib/postgresql/VERSION/bin.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server is not installed: " + install)
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}
