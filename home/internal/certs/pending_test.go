package certs

import (
	"strings"
	"testing"
	"time"
)

// An https entry that terminates TLS without a certificate in service
// tells its owner that visitors see a TLS error, and why; with one in
// service (even during a failed renewal) it says nothing.
func TestPendingNotice(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	const lead = "certificate pending: visitors see a TLS error until it is issued ("
	tests := []struct {
		name string
		info *Info
		want string // in the notice; "" means no notice
	}{
		{"unknown", nil, "none obtained yet"},
		{"pending", &Info{State: Pending}, "being obtained, or waiting for the name's mapping and tunnel"},
		{"failed", &Info{State: Failed, Error: "acme: rate limited", NextAttempt: now.Add(time.Hour)}, "the last attempt failed: acme: rate limited; next attempt 2026-11-30 13:00 UTC"},
		{"expired", &Info{State: Valid, NotAfter: now.Add(-time.Minute)}, "the certificate expired 2026-11-30 11:59 UTC"},
		{"valid", &Info{State: Valid, NotAfter: now.Add(time.Hour)}, ""},
		{"failed renewal, old one serves", &Info{State: Failed, Error: "x", NotAfter: now.Add(time.Hour)}, ""},
	}
	for _, tt := range tests {
		got := PendingNotice(tt.info, now)
		if tt.want == "" {
			if got != "" {
				t.Errorf("%s: notice %q, want none", tt.name, got)
			}
			continue
		}
		if !strings.HasPrefix(got, lead) || !strings.Contains(got, tt.want) {
			t.Errorf("%s: notice %q, want %q...%q", tt.name, got, lead, tt.want)
		}
	}
}
