package cloudapi

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/proto/homeauth"
)

// bearer authenticates with a user's API token.
type bearer string

func (b bearer) authorize(req *http.Request, _ []byte) error {
	if b != "" {
		req.Header.Set("Authorization", "Bearer "+string(b))
	}
	return nil
}

// homeSigner signs each request as the home (proto/homeauth): the home's
// slug, the method, the request URI as sent, the time, a fresh nonce and
// the body's hash, signed with the home's SSH key.
type homeSigner struct {
	slug   string
	mu     sync.Mutex
	signer ssh.Signer
}

func (h *homeSigner) authorize(req *http.Request, body []byte) error {
	if len(body) > homeauth.MaxBody {
		return fmt.Errorf("request body of %d bytes is over the %d a signed request may carry", len(body), homeauth.MaxBody)
	}
	h.mu.Lock()
	signer := h.signer
	h.mu.Unlock()
	r, err := Sign(signer, h.slug, req.Method, req.URL.RequestURI(), time.Now(), body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", r.Header())
	return nil
}

// Sign makes the signed authorization of one request. RSA keys sign with
// rsa-sha2-256, never SHA-1 ssh-rsa.
func Sign(signer ssh.Signer, slug, method, requestURI string, at time.Time, body []byte) (homeauth.Request, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return homeauth.Request{}, err
	}
	r := homeauth.Request{Slug: slug, Time: time.Unix(at.Unix(), 0), Nonce: hex.EncodeToString(nonce)}
	msg := homeauth.Message(slug, method, requestURI, r.Time, r.Nonce, body)
	var sig *ssh.Signature
	var err error
	if signer.PublicKey().Type() == ssh.KeyAlgoRSA {
		as, ok := signer.(ssh.AlgorithmSigner)
		if !ok {
			return homeauth.Request{}, fmt.Errorf("this RSA key cannot sign with rsa-sha2-256; use an ed25519 key (home keygen)")
		}
		sig, err = as.SignWithAlgorithm(rand.Reader, msg, ssh.KeyAlgoRSASHA256)
	} else {
		sig, err = signer.Sign(rand.Reader, msg)
	}
	if err != nil {
		return homeauth.Request{}, fmt.Errorf("signing the request with the home's key: %w", err)
	}
	r.Format, r.Blob = sig.Format, sig.Blob
	return r, nil
}
