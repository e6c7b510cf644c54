package certs

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
)

// Challenge types, in the order the home tries them.
const (
	TLSALPN01 = acme.ChallengeTypeTLSALPN01 // on the 443 path: the gateway answers ALPN acme-tls/1
	HTTP01    = acme.ChallengeTypeHTTP01    // on the 80 path: /.well-known/acme-challenge/
)

const httpChallengePrefix = "/.well-known/acme-challenge/"

// challenges holds what the home answers while the CA validates: the
// TLS-ALPN-01 certificate per name and the HTTP-01 key authorization per
// (name, path). Only pending challenges are answered.
type challenges struct {
	mu   sync.Mutex
	alpn map[string]*tls.Certificate
	http map[string]string // host + path -> key authorization
	seen map[string]int    // validation requests answered, per type
}

func newChallenges() *challenges {
	return &challenges{alpn: map[string]*tls.Certificate{}, http: map[string]string{}, seen: map[string]int{}}
}

// present starts answering ch.
func (c *challenges) present(ch acme.Challenge) error {
	name := ch.Identifier.Value
	switch ch.Type {
	case TLSALPN01:
		cert, err := acmez.TLSALPN01ChallengeCert(ch)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.alpn[name] = cert
		c.mu.Unlock()
	case HTTP01:
		c.mu.Lock()
		c.http[name+ch.HTTP01ResourcePath()] = ch.KeyAuthorization
		c.mu.Unlock()
	}
	return nil
}

// cleanUp stops answering ch.
func (c *challenges) cleanUp(ch acme.Challenge) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ch.Type {
	case TLSALPN01:
		delete(c.alpn, ch.Identifier.Value)
	case HTTP01:
		delete(c.http, ch.Identifier.Value+ch.HTTP01ResourcePath())
	}
}

// cert returns the TLS-ALPN-01 certificate pending for name.
func (c *challenges) cert(name string) (*tls.Certificate, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cert, ok := c.alpn[strings.ToLower(name)]
	if ok {
		c.seen[TLSALPN01]++
	}
	return cert, ok
}

// answer writes the HTTP-01 key authorization for r, if one is pending.
func (c *challenges) answer(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || !strings.HasPrefix(r.URL.Path, httpChallengePrefix) {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	c.mu.Lock()
	keyAuth, ok := c.http[strings.ToLower(host)+r.URL.Path]
	if ok {
		c.seen[HTTP01]++
	}
	c.mu.Unlock()
	if !ok {
		return false
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, keyAuth)
	return true
}

// answered returns how many validation requests of each type were answered.
func (c *challenges) answered() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.seen))
	for k, v := range c.seen {
		out[k] = v
	}
	return out
}
