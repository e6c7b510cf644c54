package serve_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/cloud/internal/store/pgtest"
	"homeport.dev/proto"
)

var pg = pgtest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	cloudtest.StopPostgres() // HOMEPORT_TEST_DB=postgres
	cloudtest.RemoveBinary()
	os.Exit(code)
}

// TestTheCloudRunsOnPostgreSQL: with --db postgres://... the whole cloud
// keeps its state in PostgreSQL: a home claimed and mapped through the API
// logs in over SSH and serves a visitor through HAProxy, and after a restart
// the token, the mappings and the route are still there. No SQLite file is
// made in the data directory.
func TestTheCloudRunsOnPostgreSQL(t *testing.T) {
	dsn := pg.DB(t)
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true, Args: []string{"--db", dsn}})
	r := setup(t, c)
	visit := func(c *cloudtest.Cloud) {
		t.Helper()
		cl, err := c.Dial(r.home)
		if err != nil {
			t.Fatalf("home login: %v", err)
		}
		defer cl.Close()
		cloudtest.Forward(t, cl, r.tcp.TunnelPort, greet)
		if got, err := tcpGet(fmt.Sprintf("127.0.0.1:%d", r.tcp.PublicPort)); err != nil || got != "hello ping\n" {
			t.Fatalf("visitor through HAProxy and the tunnel: %q %v", got, err)
		}
	}
	visit(c)

	c = c.Restart(t)
	var list []proto.Mapping
	if st := api(t, c, r.token, "GET", "/api/v1/homes/"+r.home.Slug+"/mappings", nil, &list); st != 200 || len(list) != 4 {
		t.Fatalf("after a restart: %d, %d mappings, want 200 and 4", st, len(list))
	}
	visit(c)

	if _, err := os.Stat(filepath.Join(c.Dir, "cloud.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a SQLite database was made in the data directory (%v)", err)
	}
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var homes int64
	if err := db.Model(&store.Home{}).Count(&homes).Error; err != nil || homes != 1 {
		t.Errorf("PostgreSQL holds %d homes (%v), want 1", homes, err)
	}
}

// greet answers a visitor that came through HAProxy (PROXY v2 header) with
// "hello" and its first line, as the dataplane tests' tunnel servers do.
func greet(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	if _, err := proxyproto.Read(br); err != nil {
		return
	}
	line, _ := br.ReadString('\n')
	fmt.Fprintf(conn, "hello %s\n", strings.TrimSpace(line))
}
