// Package homeauth is how a home proves who it is to the cloud's API: each
// request is signed with the home's own SSH key, so a home profile never
// stores an account-level credential. Rotating or revoking a user's API
// tokens cannot break a home; replacing the home's key or releasing it
// revokes its credential, with nothing to keep in sync.
//
// This package owns the wire format only (the signed message and the
// Authorization header); signing and verifying use golang.org/x/crypto/ssh
// on each side, so proto keeps no dependencies.
package homeauth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Scheme is the Authorization scheme of a signed home request.
const Scheme = "Homeport-Home"

// MaxSkew is how far a request's time may be from the cloud's clock. A
// captured request cannot be replayed after it, and the cloud remembers
// nonces for twice as long.
const MaxSkew = 5 * time.Minute

// MaxBody bounds the body a signed request may carry (the cloud hashes it
// before it authenticates the caller).
const MaxBody = 1 << 20

// Request is the parsed Authorization header of a signed request.
type Request struct {
	Slug  string    // the home
	Time  time.Time // when it was signed (whole seconds)
	Nonce string    // 32 lower-case hex digits, never reused within 2*MaxSkew
	// Format is the SSH signature algorithm (ssh-ed25519, rsa-sha2-256,
	// ecdsa-sha2-nistp256...); Blob the signature itself.
	Format string
	Blob   []byte
}

// Message is the exact byte string a home signs: a version tag, then the
// home, method, request URI (path and query as sent), time, nonce and the
// body's SHA-256, one per line. Everything that changes the request's
// meaning is in it.
func Message(slug, method, requestURI string, t time.Time, nonce string, body []byte) []byte {
	sum := sha256.Sum256(body)
	return []byte(strings.Join([]string{
		"homeport-home-request-v1", slug, strings.ToUpper(method), requestURI,
		strconv.FormatInt(t.Unix(), 10), nonce, hex.EncodeToString(sum[:]),
	}, "\n"))
}

// Header formats r as an Authorization header value.
func (r Request) Header() string {
	return fmt.Sprintf("%s slug=%s, ts=%d, nonce=%s, sig=%s:%s", Scheme, r.Slug, r.Time.Unix(), r.Nonce,
		r.Format, base64.RawURLEncoding.EncodeToString(r.Blob))
}

// ErrNotHome means the header is not a signed home request at all.
var ErrNotHome = errors.New("not a " + Scheme + " authorization")

// Parse reads an Authorization header value. It checks the syntax only:
// the caller verifies the signature against the home's key and checks the
// time and nonce.
func Parse(header string) (Request, error) {
	rest, ok := strings.CutPrefix(header, Scheme+" ")
	if !ok {
		return Request{}, ErrNotHome
	}
	if len(rest) > 2048 {
		return Request{}, errors.New("the authorization header is too long")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || fields[k] != "" {
			return Request{}, fmt.Errorf("malformed %s authorization: want slug=, ts=, nonce=, sig=", Scheme)
		}
		fields[k] = v
	}
	var r Request
	r.Slug = fields["slug"]
	if !validSlug(r.Slug) {
		return Request{}, errors.New("the authorization names no valid home slug")
	}
	ts, err := strconv.ParseInt(fields["ts"], 10, 64)
	if err != nil || ts <= 0 {
		return Request{}, errors.New("the authorization's ts is not a Unix time")
	}
	r.Time = time.Unix(ts, 0)
	r.Nonce = fields["nonce"]
	if len(r.Nonce) != 32 || strings.Trim(r.Nonce, "0123456789abcdef") != "" {
		return Request{}, errors.New("the authorization's nonce must be 32 lower-case hex digits")
	}
	format, blob, ok := strings.Cut(fields["sig"], ":")
	if !ok || format == "" || len(format) > 64 || strings.Trim(format, "abcdefghijklmnopqrstuvwxyz0123456789-@.") != "" {
		return Request{}, errors.New("the authorization's sig must be ALGORITHM:BASE64")
	}
	r.Format = format
	if r.Blob, err = base64.RawURLEncoding.DecodeString(blob); err != nil || len(r.Blob) == 0 {
		return Request{}, errors.New("the authorization's signature is not base64url")
	}
	return r, nil
}

// CheckTime reports whether r was signed within MaxSkew of now.
func (r Request) CheckTime(now time.Time) error {
	if d := now.Sub(r.Time); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("the request was signed at %s, %s away from the cloud's clock (at most %s); check this machine's clock",
			r.Time.UTC().Format(time.RFC3339), d.Round(time.Second).Abs(), MaxSkew)
	}
	return nil
}

func validSlug(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
