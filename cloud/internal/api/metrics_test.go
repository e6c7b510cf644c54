package api_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// /metrics describes every user's homes: a connection from this machine
// (Prometheus beside the cloud) reads it, anyone else needs an admin token,
// and HTTPS from the internet counts as anyone else even when HAProxy
// relays it from loopback.
func TestMetricsOnlyForLoopbackOrAdmins(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	get := func(remote, token string, overTLS bool) int {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.RemoteAddr = remote
		if overTLS {
			r.TLS = &tls.ConnectionState{}
		}
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		e.app.API.ServeHTTP(w, r)
		if w.Code == 200 && !strings.Contains(w.Body.String(), "homeport_users ") {
			t.Errorf("metrics from %s: 200 without the figures", remote)
		}
		return w.Code
	}
	for _, c := range []struct {
		name, remote, token string
		tls                 bool
		want                int
	}{
		{"loopback", "127.0.0.1:40000", "", false, http.StatusOK},
		{"ipv6 loopback", "[::1]:40000", "", false, http.StatusOK},
		{"internet, anonymous", "203.0.113.7:40000", "", false, http.StatusUnauthorized},
		{"internet, a user", "203.0.113.7:40000", alice, false, http.StatusForbidden},
		{"internet, an admin", "203.0.113.7:40000", e.admin, false, http.StatusOK},
		{"https relayed from loopback, anonymous", "127.0.0.1:40000", "", true, http.StatusUnauthorized},
		{"https, an admin", "127.0.0.1:40000", e.admin, true, http.StatusOK},
	} {
		if got := get(c.remote, c.token, c.tls); got != c.want {
			t.Errorf("%s: GET /metrics = %d, want %d", c.name, got, c.want)
		}
	}
}
