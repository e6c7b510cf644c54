package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// Info returns the state of domain's certificate.
func (m *Manager) Info(domain string) Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.infoLocked(strings.ToLower(domain))
}

func (m *Manager) infoLocked(name string) Info {
	d, known := m.domains[name]
	e := m.certs[name]
	i := Info{Domain: name, State: Pending, Managed: known && (d.Auto || e != nil && e.cur != nil)}
	if e == nil {
		return i
	}
	if e.cur != nil {
		l := e.cur.leaf()
		i.State, i.NotBefore, i.NotAfter = Valid, l.NotBefore, l.NotAfter
		i.Issuer, i.Serial, i.Challenge = issuerName(l), l.SerialNumber.Text(16), e.cur.meta.Challenge
		if i.Managed {
			i.RenewAt = renewAt(l.NotBefore, l.NotAfter, m.cfg.RenewWindow)
		}
		i.Error = e.deployErr
	}
	switch {
	case e.run != nil && e.cur != nil:
		i.State = Renewing
	case e.run != nil:
		i.State = Pending
	case e.err != nil:
		i.State, i.Error, i.NextAttempt = Failed, e.err.Error(), e.next
		if !i.Managed {
			i.NextAttempt = time.Time{}
		}
	}
	return i
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}

// Status lists the certificates of exposed names that have or need one,
// and stored certificates of names no longer exposed, by name.
func (m *Manager) Status() []Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := map[string]bool{}
	for name, d := range m.domains {
		if d.Auto {
			names[name] = true
		}
	}
	for name, e := range m.certs {
		if e.cur != nil || e.err != nil || e.run != nil {
			names[name] = true
		}
	}
	out := make([]Info, 0, len(names))
	for name := range names {
		out = append(out, m.infoLocked(name))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out
}

// Subscribe returns a channel that receives a value after every change of
// a certificate's state (coalesced), and a function to stop.
func (m *Manager) Subscribe() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	m.mu.Lock()
	m.subs[c] = struct{}{}
	m.mu.Unlock()
	return c, func() {
		m.mu.Lock()
		delete(m.subs, c)
		m.mu.Unlock()
	}
}

func (m *Manager) notify() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// GetCertificate serves the certificate of the ClientHello's name (for
// tls.Config.GetCertificate), and TLS-ALPN-01 challenge certificates.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if slices.Contains(hello.SupportedProtos, "acme-tls/1") {
		if c, ok := m.ch.cert(name); ok {
			return c, nil
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.certs[name]; e != nil && e.cur != nil {
		return e.cur.cert, nil
	}
	return nil, fmt.Errorf("no certificate for %q yet (%s)", name, m.infoLocked(name).Summary())
}

// TLSConfig is the server configuration of terminated https entries: the
// home's certificates, HTTP/2 and HTTP/1.1.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: m.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
		MinVersion:     tls.VersionTLS12,
	}
}

// ChallengeCert returns the TLS-ALPN-01 certificate of a challenge pending
// for name (gateway.Options.ChallengeCert).
func (m *Manager) ChallengeCert(name string) (*tls.Certificate, bool) {
	return m.ch.cert(strings.ToLower(name))
}

// HTTPHandler answers pending HTTP-01 challenges and passes every other
// request to next (gateway.Options.WrapHTTP).
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.ch.answer(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Answered counts the validation requests answered so far, by challenge
// type: which path the CA actually used.
func (m *Manager) Answered() map[string]int { return m.ch.answered() }
