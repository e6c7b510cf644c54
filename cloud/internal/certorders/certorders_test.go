package certorders_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"homeport.dev/cloud/internal/certorders"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
)

// syncBuf is a log destination safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	db   *store.DB
	svc  *certorders.Service
	reg  *prometheus.Registry
	log  *syncBuf
	now  time.Time
	home map[string]store.Home
}

// newFixture gives two homes, abc and xyz, with mappings under the shared
// domain homes.example.net and under their own example.com/example.org.
func newFixture(t *testing.T, perHome, warnAt int) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "cloud.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, reg: prometheus.NewRegistry(), log: &syncBuf{}, now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), home: map[string]store.Home{}}
	u := store.User{Username: "alice", Email: "a@example.com", PasswordHash: "x", Role: "user", Active: true}
	must(t, db.Create(&u).Error)
	port := 20000
	for i, slug := range []string{"abc", "xyz"} {
		h := store.Home{Slot: i, Slug: slug, UserID: u.ID, PublicKey: "k" + slug, KeyFingerprint: "f" + slug}
		must(t, db.Create(&h).Error)
		f.home[slug] = h
		for _, host := range []string{slug + ".homes.example.net", "web-" + slug + ".homes.example.net", "app." + map[string]string{"abc": "example.com", "xyz": "example.org"}[slug]} {
			must(t, db.Create(&store.Mapping{HomeID: h.ID, Scheme: "https", Host: &host, TunnelPort: port, ProxyProtocol: true}).Error)
			port++
		}
	}
	f.svc = certorders.New(db, certorders.Options{
		Shared: "homes.example.net", PerHome: perHome, WarnAt: warnAt, Registry: f.reg,
		Log: slog.New(slog.NewTextHandler(f.log, nil)),
		Now: func() time.Time { return f.now },
	})
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) record(t *testing.T, slug, host string) error {
	t.Helper()
	_, err := f.svc.Record(context.Background(), f.home[slug], host)
	return err
}

func (f *fixture) metric(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	n, err := testutil.GatherAndCount(f.reg, "homeport_certificate_orders_week")
	must(t, err)
	fmt.Fprintf(&b, "series=%d", n)
	mfs, err := f.reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			fmt.Fprintf(&b, " %s=%v", m.GetLabel()[0].GetValue(), m.GetGauge().GetValue())
		}
	}
	return b.String()
}

// TestOrdersAreTheHomesOwnAndBoundedPerWeek: a home reports certificates
// of its own mappings' hosts only, at most PerHome in 7 days (429 after
// that, until the oldest is a week old); other homes are unaffected.
func TestOrdersAreTheHomesOwnAndBoundedPerWeek(t *testing.T) {
	f := newFixture(t, 3, 1000)
	for _, tt := range []struct {
		host string
		kind problem.Kind
	}{
		{"xyz.homes.example.net", problem.NotFound}, // another home's name
		{"app.example.org", problem.NotFound},
		{"nothing.example.com", problem.NotFound},
		{"a b.example.com", problem.Invalid},
		{"", problem.Invalid},
	} {
		if err := f.record(t, "abc", tt.host); problem.KindOf(err) != tt.kind {
			t.Errorf("abc reports %q: %v, want kind %d", tt.host, err, tt.kind)
		}
	}
	if got := f.metric(t); got != "series=2 all=0 homes.example.net=0" {
		t.Errorf("refused reports were counted: %s", got)
	}
	for i, host := range []string{"abc.homes.example.net", "App.Example.com", "web-abc.homes.example.net"} {
		must(t, f.record(t, "abc", host))
		f.now = f.now.Add(time.Duration(i+1) * time.Hour)
	}
	err := f.record(t, "abc", "abc.homes.example.net")
	if status, _ := problem.HTTPStatus(problem.KindOf(err)); status != 429 {
		t.Errorf("the 4th report in a week: %v (status %d), want 429", err, status)
	}
	must(t, f.record(t, "xyz", "xyz.homes.example.net")) // another home's budget
	if got := f.metric(t); got != "series=2 all=4 homes.example.net=3" {
		t.Errorf("metric = %s, want 4 in all, 3 under the shared domain", got)
	}
	f.now = f.now.Add(certorders.Week - 5*time.Hour) // the first report is now a week old
	must(t, f.record(t, "abc", "abc.homes.example.net"))
	if err := f.record(t, "abc", "abc.homes.example.net"); problem.KindOf(err) != problem.RateLimited {
		t.Errorf("a second report as only one aged out: %v, want 429", err)
	}
}

// TestWarnsWhenARegisteredDomainNearsTheCAsLimit: orders of every home
// under a shared domain that is not a public suffix count against one
// registered domain; from WarnAt the cloud warns, once an hour, saying to
// register the shared domain on the Public Suffix List.
func TestWarnsWhenARegisteredDomainNearsTheCAsLimit(t *testing.T) {
	f := newFixture(t, 100, 3)
	must(t, f.record(t, "abc", "abc.homes.example.net"))
	must(t, f.record(t, "xyz", "xyz.homes.example.net"))
	must(t, f.record(t, "abc", "app.example.com"))
	if strings.Contains(f.log.String(), "WARN") {
		t.Fatalf("warned below the threshold: %s", f.log)
	}
	must(t, f.record(t, "xyz", "web-xyz.homes.example.net")) // the third for example.net
	logs := f.log.String()
	if !strings.Contains(logs, "domain=example.net") || !strings.Contains(logs, "orders_7d=3") || !strings.Contains(logs, "Public Suffix List") {
		t.Fatalf("warning = %q, want example.net, its count and the PSL advice", logs)
	}
	f.now = f.now.Add(10 * time.Minute)
	must(t, f.record(t, "abc", "web-abc.homes.example.net"))
	if n := strings.Count(f.log.String(), "WARN"); n != 1 {
		t.Errorf("%d warnings within the hour, want 1", n)
	}
	f.now = f.now.Add(time.Hour)
	must(t, f.record(t, "abc", "abc.homes.example.net"))
	if n := strings.Count(f.log.String(), "WARN"); n != 2 {
		t.Errorf("%d warnings after an hour, want 2", n)
	}
	if strings.Contains(f.log.String(), "domain=example.com") {
		t.Errorf("warned about example.com, which has one order")
	}
}
