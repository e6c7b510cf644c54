package check

import (
	"context"
	"os"
	"strings"
	"testing"

	"homeport.dev/cloud/internal/config"
)

// `cloud check` fails when the plain-HTTP API or the metrics answer beyond
// loopback, and not when they stay on it.
func TestClearTextBeyondLoopbackIsAProblem(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	for _, p := range []string{"cloud.db", "ssh_host_ed25519_key"} {
		os.WriteFile(dir+"/"+p, []byte("x"), 0o600)
	}
	for _, c := range []struct {
		args []string
		want []string // substrings of the findings, in order
	}{
		{[]string{"--api-addr", "127.0.0.1:8000"}, nil},
		{[]string{"--api-addr", "[::1]:8000", "--metrics-addr", "off"}, nil},
		{[]string{"--api-addr", ":8000"}, []string{"listen in clear (plain HTTP) on :8000"}},
		{[]string{"--api-addr", "0.0.0.0:8000", "--metrics-addr", "0.0.0.0:9100"}, []string{"on 0.0.0.0:8000", "/metrics is served without authentication on 0.0.0.0:9100"}},
		{[]string{"--api-addr", "192.0.2.10:8000"}, []string{"on 192.0.2.10:8000"}},
	} {
		cfg, err := config.Parse(append([]string{"--data", dir, "--haproxy", "off"}, c.args...))
		if err != nil {
			t.Fatal(err)
		}
		got := Run(context.Background(), cfg)
		if len(got) != len(c.want) {
			t.Errorf("%v: findings %+v, want %d", c.args, got, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(got[i].What, w) {
				t.Errorf("%v: finding %q lacks %q", c.args, got[i].What, w)
			}
		}
	}
}
