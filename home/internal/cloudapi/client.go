// Package cloudapi is the home's typed client of the cloud's REST API: every
// call takes a context, has a timeout, and turns the cloud's error envelope
// into an *Error that carries the cloud's own message.
//
// A home talks to its cloud as itself: NewSigned signs every request with
// the home's SSH key (proto/homeauth). A user's API token is used only by
// NewWithToken, to claim or adopt a home, and is never stored.
package cloudapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/proto"
)

// Client talks to one cloud with one credential: a home's key (signed
// requests) or a user's API token.
type Client struct {
	base *url.URL
	auth authorizer
	http *http.Client
}

// authorizer sets a request's Authorization header; body is the request's
// exact body (nil when none).
type authorizer interface {
	authorize(req *http.Request, body []byte) error
}

// NewSigned returns a client for the cloud at rawURL that signs every
// request as home slug with the home's key.
func NewSigned(rawURL string, signer ssh.Signer, slug string) (*Client, error) {
	if signer == nil || slug == "" {
		return nil, errors.New("a signed client needs the home's key and slug")
	}
	return newClient(rawURL, &homeSigner{slug: slug, signer: signer})
}

// NewWithToken returns a client for the cloud at rawURL that authenticates
// with a user's API token (none when empty). Only claiming or adopting a
// home uses one: a profile never stores it.
func NewWithToken(rawURL, token string) (*Client, error) {
	return newClient(rawURL, bearer(token))
}

func newClient(rawURL string, auth authorizer) (*Client, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return &Client{base: u, auth: auth, http: &http.Client{Timeout: 20 * time.Second}}, nil
}

// SetSigner replaces the key a signed client signs with (after a key
// rotation); requests already under way finish with the old one.
func (c *Client) SetSigner(signer ssh.Signer) error {
	h, ok := c.auth.(*homeSigner)
	if !ok {
		return errors.New("this client does not sign its requests")
	}
	h.mu.Lock()
	h.signer = signer
	h.mu.Unlock()
	return nil
}

// TrustCA makes the client trust only the roots in caPEM for the cloud's
// HTTPS (a private CA, or a test CA), instead of the system's. A proxy
// named by HTTPS_PROXY is still used.
func (c *Client) TrustCA(caPEM []byte) error {
	if c.base.Scheme != "https" {
		return fmt.Errorf("a CA file is for an https:// cloud URL, not %s", c.base)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("the CA file holds no PEM certificate")
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.http = &http.Client{Timeout: c.http.Timeout, Transport: t}
	return nil
}

// ParseURL checks a cloud URL: http(s), a host, no query or fragment.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(raw), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("cloud URL %s must look like https://cloud.example.com or http://127.0.0.1:8000", proto.Printable(raw))
	}
	return u, nil
}

// InClear reports whether the client talks to the cloud in clear across a
// network: plain http:// to a host that is not this machine.
func (c *Client) InClear() bool {
	if c.base.Scheme != "http" {
		return false
	}
	host := c.base.Hostname()
	ip := net.ParseIP(host)
	return !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback())
}

// URL is the cloud's base URL.
func (c *Client) URL() string { return c.base.String() }

// Error is an error answer of the cloud.
type Error struct {
	Status int
	proto.ErrorBody
	Hint string // what the user can do, when this side knows better
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("the cloud refused (%d %s): %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		msg = fmt.Sprintf("the cloud refused (%d %s): %s: %s", e.Status, e.Code, e.Field, e.Message)
	}
	if e.Hint != "" {
		msg += "\n" + e.Hint
	}
	return msg
}

// IsStatus reports whether err is a cloud answer with the given status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var raw []byte
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		raw, r = b, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := c.auth.authorize(req, raw); err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return unreachable(c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("reading the cloud's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var env proto.ErrorEnvelope
		if json.Unmarshal(b, &env) != nil || env.Error.Code == "" {
			return &Error{Status: resp.StatusCode, ErrorBody: proto.ErrorBody{Code: "http_error", Message: fmt.Sprintf("%s from %s: is this a homeport cloud URL?", resp.Status, c.base)}}
		}
		e := &Error{Status: resp.StatusCode, ErrorBody: env.Error}
		if _, signed := c.auth.(*homeSigner); signed && resp.StatusCode == http.StatusUnauthorized {
			e.Hint = "the cloud does not accept this home's key: was the home released, or its key replaced in the web UI? (`home import` or `home register --home` sets up the profile again)"
		}
		return e
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("the cloud's answer to %s %s is not what this home expects (%v); are the versions compatible?", method, path, err)
		}
	}
	return nil
}

func unreachable(base *url.URL, err error) error {
	var ne net.Error
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var wrongName x509.HostnameError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown), errors.As(err, &invalid), errors.As(err, &wrongName), errors.As(err, &verify):
		return fmt.Errorf("the cloud's certificate is not trusted: %w; use --ca-file for a private CA (cloud.ca_file in the profile)", err)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("the cloud at %s did not answer in time: %w", base, err)
	case strings.Contains(err.Error(), "connection refused"):
		return fmt.Errorf("cannot reach the cloud at %s: connection refused (is `cloud serve` running there, and is the URL right?)", base)
	case strings.Contains(err.Error(), "no such host"):
		return fmt.Errorf("cannot reach the cloud at %s: unknown host name", base)
	}
	return fmt.Errorf("cannot reach the cloud at %s: %w", base, err)
}

// Me returns the token's user.
func (c *Client) Me(ctx context.Context) (proto.User, error) {
	var u proto.User
	return u, c.do(ctx, http.MethodGet, proto.APIPrefix+"/me", nil, &u)
}

// ClaimHome claims a home slot for publicKey.
func (c *Client) ClaimHome(ctx context.Context, publicKey string) (proto.Home, error) {
	var h proto.Home
	return h, c.do(ctx, http.MethodPost, proto.APIPrefix+"/homes", proto.ClaimHomeRequest{PublicKey: publicKey}, &h)
}

// Home returns a home's details.
func (c *Client) Home(ctx context.Context, slug string) (proto.Home, error) {
	var h proto.Home
	return h, c.do(ctx, http.MethodGet, homePath(slug), nil, &h)
}

// PatchHome changes a home.
func (c *Client) PatchHome(ctx context.Context, slug string, req proto.PatchHomeRequest) (proto.Home, error) {
	var h proto.Home
	return h, c.do(ctx, http.MethodPatch, homePath(slug), req, &h)
}

// ReleaseHome releases a home and everything it owns.
func (c *Client) ReleaseHome(ctx context.Context, slug string) error {
	return c.do(ctx, http.MethodDelete, homePath(slug), nil, nil)
}

// BaseDomains lists a home's base domains.
func (c *Client) BaseDomains(ctx context.Context, slug string) ([]proto.BaseDomain, error) {
	var ds []proto.BaseDomain
	return ds, c.do(ctx, http.MethodGet, homePath(slug)+"/base-domains", nil, &ds)
}

// AddBaseDomain registers a base domain.
func (c *Client) AddBaseDomain(ctx context.Context, slug, domain string) (proto.BaseDomain, error) {
	var d proto.BaseDomain
	return d, c.do(ctx, http.MethodPost, homePath(slug)+"/base-domains", proto.BaseDomainRequest{Domain: domain}, &d)
}

// RemoveBaseDomain removes a base domain.
func (c *Client) RemoveBaseDomain(ctx context.Context, slug, domain string) error {
	return c.do(ctx, http.MethodDelete, homePath(slug)+"/base-domains/"+url.PathEscape(domain), nil, nil)
}

// Mappings lists a home's mappings.
func (c *Client) Mappings(ctx context.Context, slug string) ([]proto.Mapping, error) {
	var ms []proto.Mapping
	return ms, c.do(ctx, http.MethodGet, homePath(slug)+"/mappings", nil, &ms)
}

// CreateMapping creates a mapping.
func (c *Client) CreateMapping(ctx context.Context, slug string, req proto.MappingRequest) (proto.Mapping, error) {
	var m proto.Mapping
	return m, c.do(ctx, http.MethodPost, homePath(slug)+"/mappings", req, &m)
}

// DeleteMapping deletes a mapping.
func (c *Client) DeleteMapping(ctx context.Context, slug string, id uint64) error {
	return c.do(ctx, http.MethodDelete, fmt.Sprintf("%s/mappings/%d", homePath(slug), id), nil, nil)
}

func homePath(slug string) string { return proto.APIPrefix + "/homes/" + url.PathEscape(slug) }

// Homes lists the homes the credential may see: the account's with a
// user's token, the home itself with a signed client.
func (c *Client) Homes(ctx context.Context) ([]proto.Home, error) {
	var hs []proto.Home
	return hs, c.do(ctx, http.MethodGet, proto.APIPrefix+"/homes", nil, &hs)
}

// PrivateMappings lists the private mappings of every home of the
// account that owns the caller (what `home connect` may reach).
func (c *Client) PrivateMappings(ctx context.Context) ([]proto.PrivateMapping, error) {
	var ms []proto.PrivateMapping
	return ms, c.do(ctx, http.MethodGet, proto.APIPrefix+"/private-mappings", nil, &ms)
}

// ReportCertificate tells the cloud the home obtained a certificate for
// host, one of its mappings' names.
func (c *Client) ReportCertificate(ctx context.Context, slug, host string) error {
	return c.do(ctx, http.MethodPost, homePath(slug)+"/certificates", proto.CertificateOrderRequest{Host: host}, nil)
}
