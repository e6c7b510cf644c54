package cloudapi

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/proto"
	"homeport.dev/proto/homeauth"
)

// verify checks a signed request the way the cloud does: parse the header,
// rebuild the contract's Message from what arrived, verify with the home's
// public key.
func verify(r *http.Request, pub ssh.PublicKey) (homeauth.Request, error) {
	req, err := homeauth.Parse(r.Header.Get("Authorization"))
	if err != nil {
		return req, err
	}
	body, _ := io.ReadAll(r.Body)
	msg := homeauth.Message(req.Slug, r.Method, r.RequestURI, req.Time, req.Nonce, body)
	return req, pub.Verify(msg, &ssh.Signature{Format: req.Format, Blob: req.Blob})
}

func TestSignedRequestsVerifyWithTheHomesKey(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name   string
		key    crypto.Signer
		format string
	}{
		{"ed25519", edKey, ssh.KeyAlgoED25519},
		{"rsa", rsaKey, ssh.KeyAlgoRSASHA256},
		{"ecdsa", ecKey, ssh.KeyAlgoECDSA256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signer, err := ssh.NewSignerFromSigner(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			var got []homeauth.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req, err := verify(r, signer.PublicKey())
				if err != nil {
					http.Error(w, `{"error":{"code":"unauthorized","message":"`+err.Error()+`"}}`, http.StatusUnauthorized)
					return
				}
				if err := req.CheckTime(time.Now()); err != nil {
					t.Error(err)
				}
				got = append(got, req)
				if r.Method == http.MethodGet && r.URL.Path != "/api/v1/homes/abc" {
					w.Write([]byte(`[]`))
					return
				}
				w.Write([]byte(`{"slug":"abc"}`))
			}))
			defer srv.Close()
			c, err := NewSigned(srv.URL, signer, "abc")
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := c.Home(ctx, "abc"); err != nil {
				t.Fatalf("GET: %v", err)
			}
			if _, err := c.PatchHome(ctx, "abc", proto.PatchHomeRequest{PublicKey: new("ssh-ed25519 AAAA")}); err != nil {
				t.Fatalf("PATCH with a body: %v", err)
			}
			if _, err := c.Mappings(ctx, "abc"); err != nil {
				t.Fatalf("GET mappings: %v", err)
			}
			if len(got) != 3 {
				t.Fatalf("%d requests verified, want 3", len(got))
			}
			for _, r := range got {
				if r.Format != tc.format || r.Slug != "abc" {
					t.Errorf("signed as %s with %s, want abc with %s", r.Slug, r.Format, tc.format)
				}
			}
			if got[0].Nonce == got[1].Nonce || got[1].Nonce == got[2].Nonce {
				t.Errorf("a nonce was reused: %s %s %s", got[0].Nonce, got[1].Nonce, got[2].Nonce)
			}
		})
	}
}

// TestSignatureCoversTheRequest: the signature of one request does not
// verify for another method, path or body.
func TestSignatureCoversTheRequest(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromSigner(key)
	at := time.Now()
	r, err := Sign(signer, "abc", "PATCH", "/api/v1/homes/abc", at, []byte(`{"public_key":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	sig := &ssh.Signature{Format: r.Format, Blob: r.Blob}
	if err := signer.PublicKey().Verify(homeauth.Message("abc", "PATCH", "/api/v1/homes/abc", r.Time, r.Nonce, []byte(`{"public_key":"x"}`)), sig); err != nil {
		t.Fatalf("the signed request itself: %v", err)
	}
	for name, m := range map[string][]byte{
		"method": homeauth.Message("abc", "DELETE", "/api/v1/homes/abc", r.Time, r.Nonce, []byte(`{"public_key":"x"}`)),
		"path":   homeauth.Message("abc", "PATCH", "/api/v1/homes/abd", r.Time, r.Nonce, []byte(`{"public_key":"x"}`)),
		"body":   homeauth.Message("abc", "PATCH", "/api/v1/homes/abc", r.Time, r.Nonce, []byte(`{"public_key":"y"}`)),
	} {
		if signer.PublicKey().Verify(m, sig) == nil {
			t.Errorf("the signature verifies with another %s", name)
		}
	}
	// Another key's signature does not verify.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := ssh.NewSignerFromSigner(other)
	if otherSigner.PublicKey().Verify(homeauth.Message("abc", "PATCH", "/api/v1/homes/abc", r.Time, r.Nonce, []byte(`{"public_key":"x"}`)), sig) == nil {
		t.Error("another key verifies the signature")
	}
}
