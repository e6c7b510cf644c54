package certs

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

func TestRenewAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		life   time.Duration
		window float64
		want   time.Duration // after t0
	}{
		{90 * 24 * time.Hour, DefaultRenewWindow, 60 * 24 * time.Hour}, // Let's Encrypt: 30 days left
		{6 * 24 * time.Hour, DefaultRenewWindow, 4 * 24 * time.Hour},   // short-lived: 2 days left
		{9 * time.Second, DefaultRenewWindow, 6 * time.Second},
		{90 * 24 * time.Hour, 0.5, 45 * 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := renewAt(t0, t0.Add(tt.life), tt.window).Sub(t0); got != tt.want {
			t.Errorf("renewAt(%s, %.2f) = +%s, want +%s", tt.life, tt.window, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	var got []string
	for n := 1; n <= 10; n++ {
		got = append(got, backoff(n, 2*time.Minute, 6*time.Hour).String())
	}
	want := "2m0s 4m0s 8m0s 16m0s 32m0s 1h4m0s 2h8m0s 4h16m0s 6h0m0s 6h0m0s"
	if strings.Join(got, " ") != want {
		t.Errorf("backoff = %s\nwant      %s", strings.Join(got, " "), want)
	}
}

func TestSummary(t *testing.T) {
	until := time.Date(2099, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		info Info
		want string
	}{
		{Info{State: Pending, Managed: true}, "pending"},
		{Info{State: Valid, Managed: true, NotAfter: until}, "valid until 2099-03-01 12:00 UTC"},
		{Info{State: Valid, Managed: false, NotAfter: until}, "valid until 2099-03-01 12:00 UTC (not renewed: no entry uses it)"},
		{Info{State: Valid, Managed: true, NotAfter: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)}, "expired 2001-01-01 00:00 UTC"},
		{Info{State: Renewing, Managed: true, NotAfter: until}, "renewing (valid until 2099-03-01 12:00 UTC)"},
		{Info{State: Failed, Managed: true, Error: "boom"}, "failed: boom"},
		{Info{State: Failed, Managed: true, Error: "boom", NotAfter: until}, "failed: boom (the previous certificate, valid until 2099-03-01 12:00 UTC, stays in service)"},
		{Info{State: Valid, Managed: true, NotAfter: until, Error: "copy to /x failed: denied"}, "valid until 2099-03-01 12:00 UTC; copy to /x failed: denied"},
	}
	for _, tt := range tests {
		if got := tt.info.Summary(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.info, got, tt.want)
		}
	}
}

// Each common failure gets a message that says what to do.
func TestExplain(t *testing.T) {
	problem := func(typ, detail string) error {
		return fmt.Errorf("solving challenge: %w", acme.Problem{Type: acme.ProblemTypeNamespace + typ, Detail: detail, Status: 400})
	}
	tests := []struct {
		name   string
		err    error
		reason Reason
		want   string
	}{
		{"nxdomain", problem("dns", "DNS problem: NXDOMAIN looking up A for app.example.com"), DNS,
			"the CA could not reach this home at app.example.com: check that the DNS of app.example.com (A/AAAA record) points at the cloud (cloud.example) and that ports 80 and 443 reach it; the CA said: DNS problem: NXDOMAIN"},
		{"connection", problem("connection", "Connection refused"), DNS, "points at the cloud (cloud.example)"},
		{"another server answered", problem("unauthorized", "Invalid response from http://app.example.com/.well-known/acme-challenge/x: 404"), DNS, "the CA said: Invalid response"},
		{"tls-alpn", problem("tls", "remote error: tls: no application protocol"), DNS, "the CA could not reach this home"},
		{"rate limited", problem("rateLimited", "too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2030-01-02 03:04:05 UTC"), RateLimited,
			"the CA's rate limit for app.example.com was hit: too many certificates"},
		{"caa", problem("caa", "CAA record for example.com prevents issuance"), Refused, "a CAA DNS record of app.example.com forbids this CA"},
		{"rejected", problem("rejectedIdentifier", "Invalid identifier"), Refused, "the CA does not issue certificates for app.example.com"},
		{"other problem", problem("badCSR", "bad CSR"), Refused, "the CA refused the certificate for app.example.com: bad CSR"},
		{"unreachable", fmt.Errorf("provisioning client: %w", &url.Error{Op: "Get", URL: "https://ca.example/dir", Err: errors.New("dial tcp: connection refused")}), CAUnreachable,
			`cannot reach the ACME CA at https://ca.example/dir: Get "https://ca.example/dir": dial tcp: connection refused (check acme.ca_url, acme.trusted_roots and the network)`},
		{"our own", noMapping("app.example.com"), NoMapping, "no mapping for app.example.com: expose it first"},
	}
	for _, tt := range tests {
		err := explain("app.example.com", "https://ca.example/dir", "cloud.example", tt.err)
		if ReasonOf(err) != tt.reason || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %s %q\nwant %s containing %q", tt.name, ReasonOf(err), err, tt.reason, tt.want)
		}
	}
	var e *Error
	if errors.As(explain("a.example", "u", "", problem("rateLimited", "x, retry after 2030-01-02 03:04:05 UTC: see")), &e); e.RetryAfter != time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) {
		t.Errorf("retry after = %v", e.RetryAfter)
	}
}
