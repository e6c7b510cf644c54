package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"homeport.dev/cloud/internal/cloudtest"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/serve"
	"homeport.dev/proto"
)

// env is a real cloud API on a real HTTP server over a fresh database.
type env struct {
	t     *testing.T
	app   *serve.App
	url   string
	admin string // an admin's API token
	ssh   string // the SSH endpoint's address
}

type option func(*config.Config)

func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse(append([]string{"--data", dir, "--api-addr", "127.0.0.1:0", "--ssh-addr", "127.0.0.1:8022",
		"--public-host", "cloud.example.net", "--haproxy", "off", "--auth-rate", "1000", "--log-level", "error", "--shape-dev", cloudtest.ShapeDev(t)},
		cloudtest.DBArgs(t)...))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := serve.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.API)
	// The SSH endpoint accepts, as in a running cloud (/readyz checks it).
	sshLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sshDone := make(chan error, 1)
	go func() { sshDone <- app.SSH.Serve(ctx, sshLn) }()
	for deadline := time.Now().Add(5 * time.Second); app.SSH.Check(ctx) != nil; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("SSH endpoint not accepting: %v", app.SSH.Check(ctx))
		}
	}
	t.Cleanup(func() { cancel(); <-sshDone; srv.Close(); app.Close() })
	e := &env{t: t, app: app, url: srv.URL, ssh: sshLn.Addr().String()}
	e.admin = e.user("root", true, true)
	return e
}

// user creates an account directly in the store and returns an API token.
func (e *env) user(name string, active, admin bool) string {
	e.t.Helper()
	ctx := context.Background()
	u, err := e.app.Accounts.Create(ctx, account.NewUser{Username: name, Email: name + "@example.com", Password: "password-" + name, Active: true, Admin: admin})
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := e.app.Accounts.CreateToken(ctx, u, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	if !active {
		if _, err := e.app.Accounts.SetActive(ctx, name, false); err != nil {
			e.t.Fatal(err)
		}
	}
	return tok.Token
}

// do sends a request; body may be nil, a string (sent raw) or a value (JSON).
func (e *env) do(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	status, b, _ := e.send(method, path, body, func(req *http.Request, _ []byte) {
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
	})
	return status, b
}

// send sends a request after authorize has seen it and the body bytes; it
// returns the status, body and headers of the answer.
func (e *env) send(method, path string, body any, authorize func(req *http.Request, body []byte)) (int, []byte, http.Header) {
	e.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		raw = j
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	authorize(req, raw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// must sends a request that must answer want, and decodes the answer into out.
func (e *env) must(want int, method, path, token string, body, out any) {
	e.t.Helper()
	status, b := e.do(method, path, token, body)
	if status != want {
		e.t.Fatalf("%s %s = %d %s, want %d", method, path, status, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// refused asserts a 4xx answer in the error envelope with a message, and
// returns the error body.
func (e *env) refused(want int, method, path, token string, body any) proto.ErrorBody {
	e.t.Helper()
	status, b := e.do(method, path, token, body)
	var env proto.ErrorEnvelope
	if err := json.Unmarshal(b, &env); err != nil || env.Error.Code == "" || env.Error.Message == "" {
		e.t.Fatalf("%s %s: answer %d %q is not an error envelope", method, path, status, b)
	}
	if status != want {
		e.t.Fatalf("%s %s (%v) = %d %s, want %d", method, path, body, status, b, want)
	}
	return env.Error
}

// snapshot dumps every row the user can change (not token last-use times),
// to assert that a refused request changed nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	var out strings.Builder
	for _, q := range []string{
		"SELECT id, username, email, role, active FROM users ORDER BY id",
		"SELECT id, user_id, name, hash FROM tokens ORDER BY id",
		"SELECT id, slot, slug, user_id, public_key, bandwidth_limit_kbps FROM homes ORDER BY id",
		"SELECT id, home_id, domain FROM base_domains ORDER BY id",
		"SELECT id, home_id, name, scheme, host, public_port, tunnel_port, private FROM mappings ORDER BY id",
		"SELECT id, role, used_by FROM invitations ORDER BY id",
		"SELECT id, user_id, hash FROM password_resets ORDER BY id",
		"SELECT id, kind, actor FROM audit_records ORDER BY id", // a refused change is not recorded either
	} {
		rows, err := e.app.DB.Raw(q).Rows()
		if err != nil {
			e.t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatal(err)
			}
			fmt.Fprintln(&out, vals...)
		}
		rows.Close()
	}
	return out.String()
}

// unchanged runs fn and fails if the database differs afterwards.
func (e *env) unchanged(what string, fn func()) {
	e.t.Helper()
	before := e.snapshot()
	fn()
	if after := e.snapshot(); after != before {
		e.t.Errorf("%s changed the database:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

// newKey returns a fresh ed25519 public key in authorized_keys form.
func newKey(t *testing.T) string {
	_, pub := cloudtest.NewKey(t)
	return pub
}

// claim claims a home for token and returns it.
func (e *env) claim(token string) proto.Home {
	e.t.Helper()
	var h proto.Home
	e.must(201, "POST", "/api/v1/homes", token, proto.ClaimHomeRequest{PublicKey: newKey(e.t)}, &h)
	return h
}

func (e *env) addDomain(token, slug, domain string) {
	e.t.Helper()
	e.must(201, "POST", "/api/v1/homes/"+slug+"/base-domains", token, proto.BaseDomainRequest{Domain: domain}, nil)
}

func sorted(xs []int) []int {
	out := append([]int(nil), xs...)
	sort.Ints(out)
	return out
}
