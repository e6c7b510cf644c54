package certs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

// Reason classifies a failed issuance, so that callers (and tests) can act
// on it; the Error's text is what a user reads.
type Reason string

const (
	// NoMapping: no entry exposes the name (or it has no cloud mapping).
	NoMapping Reason = "no-mapping"
	// NotConnected: the name is mapped but the tunnel forward that would
	// carry the CA's validation is not up.
	NotConnected Reason = "not-connected"
	// DNS: the CA could not reach this home at the name: its DNS does not
	// point at the cloud (or points elsewhere, or ports 80/443 are blocked).
	DNS Reason = "dns"
	// RateLimited: the CA refuses more certificates or attempts for now.
	RateLimited Reason = "rate-limited"
	// CAUnreachable: the CA's ACME server did not answer (network, URL,
	// untrusted TLS certificate).
	CAUnreachable Reason = "ca-unreachable"
	// Refused: any other refusal by the CA (CAA record, blocked name, ...).
	Refused Reason = "ca-refused"
	// NoChallenge: every challenge type that could reach the name is off.
	NoChallenge Reason = "no-challenge"
)

// Error is a failed issuance with a message that says what to do.
type Error struct {
	Domain string
	Reason Reason
	msg    string
	// RetryAfter is when the CA said a rate limit ends (zero if unknown).
	RetryAfter time.Time
	Err        error
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of err, "" for errors that are not an Error.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// noMapping is the error for a name no entry exposes.
func noMapping(domain string) *Error {
	return &Error{Domain: domain, Reason: NoMapping, msg: fmt.Sprintf(
		"no mapping for %s: expose it first (home expose https %s --to localhost:PORT); the CA can only reach names the cloud routes to this home", domain, domain)}
}

// unready is the error for a known name whose challenge paths are not live.
func unready(d Domain) *Error {
	r, why := d.Down, d.Why
	if r == "" {
		r = NotConnected
	}
	if why == "" {
		why = "its tunnel forward is not up"
	}
	msg := fmt.Sprintf("%s cannot be validated now: %s", d.Name, why)
	if r == NotConnected {
		msg += "; the CA reaches this home only through the tunnel (is the console running and connected?)"
	}
	return &Error{Domain: d.Name, Reason: r, msg: msg}
}

// retryAfterRE finds the time in Let's Encrypt's rate-limit details
// ("... retry after 2026-01-02 15:04:05 UTC: see https://...").
var retryAfterRE = regexp.MustCompile(`retry after (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC`)

// explain turns what the ACME flow returned into an Error whose message
// says what went wrong in the user's terms. caURL and cloud (the cloud's
// host name) appear in the advice.
func explain(domain, caURL, cloud string, err error) error {
	var e *Error
	if errors.As(err, &e) || err == nil {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var p acme.Problem
	var ue *url.Error
	switch {
	case errors.As(err, &p):
	case errors.As(err, &ue):
		return &Error{Domain: domain, Reason: CAUnreachable, Err: err, msg: fmt.Sprintf(
			"cannot reach the ACME CA at %s: %v (check acme.ca_url, acme.trusted_roots and the network)", caURL, ue)}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Domain: domain, Reason: CAUnreachable, Err: err, msg: fmt.Sprintf(
			"the ACME CA at %s did not answer in time for %s: %v (check acme.ca_url and the network)", caURL, domain, err)}
	case errors.Is(err, errNotOffered):
		return &Error{Domain: domain, Reason: Refused, Err: err, msg: fmt.Sprintf(
			"the CA cannot validate %s with the enabled challenges: %v", domain, err)}
	default:
		return &Error{Domain: domain, Err: err, msg: fmt.Sprintf("obtaining a certificate for %s: %v", domain, err)}
	}
	detail := problemDetail(p)
	switch p.Type {
	case acme.ProblemTypeRateLimited:
		e := &Error{Domain: domain, Reason: RateLimited, Err: err, msg: fmt.Sprintf(
			"the CA's rate limit for %s was hit: %s; the home retries later on its own (repeated manual attempts count against the limit too)", domain, detail)}
		if m := retryAfterRE.FindStringSubmatch(p.Detail); m != nil {
			e.RetryAfter, _ = time.Parse("2006-01-02 15:04:05", m[1])
		}
		return e
	case acme.ProblemTypeDNS, acme.ProblemTypeConnection, acme.ProblemTypeUnauthorized,
		acme.ProblemTypeIncorrectResponse, acme.ProblemTypeTLS:
		where := "the cloud"
		if cloud != "" {
			where = "the cloud (" + cloud + ")"
		}
		return &Error{Domain: domain, Reason: DNS, Err: err, msg: fmt.Sprintf(
			"the CA could not reach this home at %s: check that the DNS of %s (A/AAAA record) points at %s and that ports 80 and 443 reach it; the CA said: %s", domain, domain, where, detail)}
	case acme.ProblemTypeCAA:
		return &Error{Domain: domain, Reason: Refused, Err: err, msg: fmt.Sprintf(
			"a CAA DNS record of %s forbids this CA (%s) to issue for it: %s", domain, caURL, detail)}
	case acme.ProblemTypeRejectedIdentifier, acme.ProblemTypeUnsupportedIdentifier:
		return &Error{Domain: domain, Reason: Refused, Err: err, msg: fmt.Sprintf(
			"the CA does not issue certificates for %s: %s", domain, detail)}
	}
	return &Error{Domain: domain, Reason: Refused, Err: err, msg: fmt.Sprintf(
		"the CA refused the certificate for %s: %s", domain, detail)}
}

// problemDetail is the CA's own words, which RFC 8555 says to show.
func problemDetail(p acme.Problem) string {
	d := p.Detail
	if d == "" {
		d = strings.TrimPrefix(p.Type, acme.ProblemTypeNamespace)
	}
	for _, sp := range p.Subproblems {
		d += "; " + sp.Detail
	}
	return d
}
