// Package homeauth authenticates API requests a home signs with its own SSH
// key (the wire format is proto/homeauth). The credential is the home's
// current key in the database: replacing the key, releasing the home or
// deactivating its owner revokes it, and nothing else can.
package homeauth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
	wire "homeport.dev/proto/homeauth"
)

// Lookup returns the home a slug names with its owner loaded, or a
// problem.NotFound error when there is none.
type Lookup func(ctx context.Context, slug string) (store.Home, error)

// Verifier checks signed home requests.
type Verifier struct {
	lookup Lookup
	nonces *Nonces
	now    func() time.Time
}

// NewVerifier returns a Verifier that finds homes with lookup and remembers
// nonces in nonces.
func NewVerifier(lookup Lookup, nonces *Nonces) *Verifier {
	return &Verifier{lookup: lookup, nonces: nonces, now: time.Now}
}

// Verify authenticates a request whose Authorization header parsed as r,
// sent with method, requestURI (as on the wire) and body. It returns the
// home, its owner loaded. Every refusal is a problem.Unauthorized saying what
// to do, except an exhausted nonce budget (*BusyError).
//
// The order matters: nothing is remembered for a request whose signature
// does not verify, so no one but the home can spend its nonce budget.
func (v *Verifier) Verify(ctx context.Context, r wire.Request, method, requestURI string, body []byte) (store.Home, error) {
	h, err := v.lookup(ctx, r.Slug)
	if problem.KindOf(err) == problem.NotFound {
		return h, unauthorized("this cloud has no home %s: it was released (or never claimed here); register the home again (home register)", proto.Printable(r.Slug))
	}
	if err != nil {
		return h, err
	}
	if !h.User.Active {
		return h, unauthorized("the owner of home %s, %s, is deactivated or not approved yet, so the home's credential is refused; ask the cloud's admin", h.Slug, h.User.Username)
	}
	key, _, err := homes.ParseKey(h.PublicKey)
	if err != nil {
		return h, fmt.Errorf("home %s: stored key unreadable: %w", h.Slug, err)
	}
	if err := checkFormat(key, r.Format); err != nil {
		return h, err
	}
	msg := wire.Message(r.Slug, method, requestURI, r.Time, r.Nonce, body)
	if r.Format != signatureFormat(key, r.Format) || key.Verify(msg, &ssh.Signature{Format: r.Format, Blob: r.Blob}) != nil {
		return h, unauthorized("the signature does not match home %s's current key (%s): the home's key was replaced (register the home again with its new key, or use the profile that holds it), or the request was changed on the way", h.Slug, key.Type())
	}
	now := v.now()
	if err := r.CheckTime(now); err != nil {
		return h, unauthorized("%v", err)
	}
	if err := v.nonces.Use(h.ID, r.Nonce, r.Time.Add(wire.MaxSkew), now); err != nil {
		return h, err
	}
	return h, nil
}

// checkFormat refuses ssh-rsa signatures, which hash with SHA-1, for an
// RSA key (any other key type cannot make one).
func checkFormat(key ssh.PublicKey, format string) error {
	if key.Type() == ssh.KeyAlgoRSA && format == ssh.KeyAlgoRSA {
		return unauthorized("ssh-rsa signatures use SHA-1, which this cloud does not accept; sign with rsa-sha2-256 or rsa-sha2-512 (a current home agent does)")
	}
	return nil
}

// signatureFormat is format if key can make signatures of that algorithm,
// else the key's own algorithm (a signature by another kind of key: the key
// was replaced).
func signatureFormat(key ssh.PublicKey, format string) string {
	if key.Type() == ssh.KeyAlgoRSA && (format == ssh.KeyAlgoRSASHA256 || format == ssh.KeyAlgoRSASHA512) {
		return format
	}
	return key.Type()
}

func unauthorized(format string, args ...any) error {
	return problem.New(problem.Unauthorized, format, args...)
}

// BusyError means the nonce budget is spent: the request was authentic but
// the cloud will not remember more nonces until old ones expire.
type BusyError struct {
	Message    string
	RetryAfter time.Duration
}

func (e *BusyError) Error() string { return e.Message }

// IsBusy reports whether err is a *BusyError.
func IsBusy(err error) (*BusyError, bool) {
	var b *BusyError
	ok := errors.As(err, &b)
	return b, ok
}
