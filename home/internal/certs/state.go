package certs

import (
	"encoding/json"
	"fmt"
	"time"
)

// State is where a domain's certificate stands.
type State string

const (
	// Pending: no certificate yet; one is being obtained, or waits for the
	// name's mapping and tunnel.
	Pending State = "pending"
	// Valid: a certificate is in service until Info.NotAfter.
	Valid State = "valid"
	// Renewing: the current certificate serves while a new one is obtained.
	Renewing State = "renewing"
	// Failed: the last attempt failed (Info.Error says why); a previous
	// certificate, if any (Info.NotAfter), stays in service.
	Failed State = "failed"
)

// Info is what is observable about one domain's certificate.
type Info struct {
	Domain string `json:"domain"`
	State  State  `json:"state"`
	// Managed is true when the home renews it on its own: an entry of the
	// domain exists and terminates TLS, has a deploy path, or was
	// certified before.
	Managed bool `json:"managed"`
	// Of the certificate in service (zero before the first issuance).
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	Issuer    string    `json:"issuer,omitempty"`
	Serial    string    `json:"serial,omitempty"`
	// Challenge is the challenge type that validated it.
	Challenge string `json:"challenge,omitempty"`
	// RenewAt is when renewal starts.
	RenewAt time.Time `json:"renew_at,omitzero"`
	// Error is why the last attempt failed (State Failed), or a problem
	// after issuance (a deploy copy that failed).
	Error string `json:"error,omitempty"`
	// NextAttempt is when a failed attempt is retried.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
}

// MarshalJSON adds "summary", the state in words, for displays.
func (i Info) MarshalJSON() ([]byte, error) {
	type plain Info
	return json.Marshal(struct {
		plain
		Summary string `json:"summary"`
	}{plain(i), i.Summary()})
}

// Summary is the state in words: "valid until 2026-03-01 12:00 UTC",
// "renewing", "failed: reason", "pending".
func (i Info) Summary() string {
	until := ""
	if !i.NotAfter.IsZero() {
		until = i.NotAfter.UTC().Format("2006-01-02 15:04 UTC")
	}
	var s string
	switch {
	case i.State == Failed && until != "":
		s = fmt.Sprintf("failed: %s (the previous certificate, valid until %s, stays in service)", i.Error, until)
	case i.State == Failed:
		s = "failed: " + i.Error
	case i.State == Renewing:
		s = "renewing (valid until " + until + ")"
	case i.State == Valid && time.Now().After(i.NotAfter):
		s = "expired " + until
	case i.State == Valid:
		s = "valid until " + until
		if i.Error != "" {
			s += "; " + i.Error
		}
	default:
		s = string(i.State)
	}
	if !i.Managed && !i.NotAfter.IsZero() {
		s += " (not renewed: no entry uses it)"
	}
	return s
}

// Defaults of the renewal policy.
const (
	// DefaultRenewWindow: renewal starts when a third of the lifetime is
	// left (30 days of a 90-day certificate), leaving weeks for retries.
	DefaultRenewWindow = 1.0 / 3
	DefaultRetryMin    = 5 * time.Minute // 4 attempts in the first hour; Let's Encrypt allows 5 failed validations an hour per name
	DefaultRetryMax    = 6 * time.Hour
	// rateLimitBackoff is the least wait after the CA said "rate limited".
	rateLimitBackoff = time.Hour
)

// renewAt is when a certificate valid from notBefore to notAfter is renewed:
// when window (a fraction) of its lifetime is left.
func renewAt(notBefore, notAfter time.Time, window float64) time.Time {
	life := notAfter.Sub(notBefore)
	return notAfter.Add(-time.Duration(float64(life) * window))
}

// backoff is the wait after the n-th consecutive failure (n >= 1):
// doubling from min, capped at max.
func backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}
