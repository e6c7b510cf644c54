package certs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
)

// obtain runs the ACME flow for d: account, order, one challenge per
// authorization (TLS-ALPN-01 first, HTTP-01 if that fails or is off),
// finalize with a fresh key, download, store, deploy.
func (m *Manager) obtain(ctx context.Context, d Domain, report Progress) (*stored, string, error) {
	types := m.challengeTypes(d)
	if len(types) == 0 {
		return nil, "", &Error{Domain: d.Name, Reason: NoChallenge, msg: fmt.Sprintf(
			"no enabled challenge can reach %s: TLS-ALPN-01 needs an https mapping%s, HTTP-01 the 80 path%s", d.Name,
			offNote(m.cfg.DisableTLSALPN, "acme.disable_tls_alpn"), offNote(m.cfg.DisableHTTP01, "acme.disable_http01"))}
	}
	acct, err := m.account(ctx, report)
	if err != nil {
		return nil, "", err
	}
	var order acme.Order
	var used string
	for i, typ := range types {
		order, err = m.acme.NewOrder(ctx, acct, acme.Order{
			Identifiers: []acme.Identifier{{Type: "dns", Value: d.Name}}, Profile: m.cfg.Profile})
		if err != nil {
			return nil, "", err
		}
		report("order placed with " + m.cfg.CA)
		used, err = m.authorize(ctx, acct, order, typ, report)
		if err == nil {
			break
		}
		var p acme.Problem
		switch {
		case i+1 < len(types) && errors.As(err, &p) && validationProblem(p):
			report(fmt.Sprintf("%s failed (%s); trying %s", typ, problemDetail(p), types[i+1]))
			continue
		case i+1 < len(types) && errors.Is(err, errNotOffered):
			report(fmt.Sprintf("%v; trying %s", err, types[i+1]))
			continue
		}
		return nil, "", err
	}
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, "", err
	}
	csr, err := acmez.NewCSR(key, []string{d.Name})
	if err != nil {
		return nil, "", err
	}
	report("validated; finalizing the order")
	order, err = m.acme.FinalizeOrder(ctx, acct, order, csr.Raw)
	if err != nil {
		return nil, "", err
	}
	chains, err := m.acme.GetCertificateChain(ctx, acct, order.Certificate)
	if err != nil {
		return nil, "", err
	}
	if len(chains) == 0 {
		return nil, "", fmt.Errorf("the CA sent no certificate for %s", d.Name)
	}
	st, err := parsePair(d.Name, chains[0].ChainPEM, keyPEM)
	if err != nil {
		return nil, "", fmt.Errorf("the CA's certificate for %s is unusable: %w", d.Name, err)
	}
	// Relinquish the authorizations (RFC 8555 §7.5.2): the CA would
	// otherwise reuse them for weeks, and a renewal that succeeds should
	// mean the name still reaches this home.
	for _, u := range order.Authorizations {
		if _, err := m.acme.DeactivateAuthorization(ctx, acct, u); err != nil {
			m.log.Debug("certs: deactivating an authorization", "domain", d.Name, "err", err)
		}
	}
	st.meta = meta{CA: m.cfg.CA, Challenge: used, IssuedAt: time.Now().UTC()}
	if err := m.store.save(d.Name, st); err != nil {
		return nil, "", fmt.Errorf("storing the certificate of %s: %w", d.Name, err)
	}
	report(fmt.Sprintf("issued by %s, valid until %s", issuerName(st.leaf()), st.leaf().NotAfter.UTC().Format("2006-01-02 15:04 UTC")))
	var deployErrs []string
	for _, dir := range m.deployDirs(d) {
		if err := deploy(dir, st); err != nil {
			deployErrs = append(deployErrs, fmt.Sprintf("copy to %s failed: %v", dir, err))
			report(deployErrs[len(deployErrs)-1])
			continue
		}
		report("copied fullchain.pem and privkey.pem to " + dir)
	}
	return st, strings.Join(deployErrs, "; "), nil
}

func offNote(off bool, key string) string {
	if off {
		return " (turned off by " + key + ")"
	}
	return ""
}

// errNotOffered: the CA does not offer a challenge type for a name.
var errNotOffered = errors.New("the CA does not offer the challenge")

// validationProblem reports whether another challenge type may succeed
// where this one failed: not when the name does not resolve at all (a
// "dns" problem), which would only spend another failed validation.
func validationProblem(p acme.Problem) bool {
	switch p.Type {
	case acme.ProblemTypeConnection, acme.ProblemTypeUnauthorized,
		acme.ProblemTypeIncorrectResponse, acme.ProblemTypeTLS, acme.ProblemTypeServerInternal:
		return true
	}
	return false
}

func (m *Manager) challengeTypes(d Domain) []string {
	var ts []string
	if d.TLSALPN && !m.cfg.DisableTLSALPN {
		ts = append(ts, TLSALPN01)
	}
	if d.HTTP01 && !m.cfg.DisableHTTP01 {
		ts = append(ts, HTTP01)
	}
	return ts
}

func (m *Manager) deployDirs(d Domain) []string {
	var dirs []string
	if m.cfg.DeployPath != "" {
		dirs = append(dirs, filepath.Join(m.cfg.DeployPath, d.Name))
	}
	if d.DeployPath != "" && !slices.Contains(dirs, d.DeployPath) {
		dirs = append(dirs, d.DeployPath)
	}
	return dirs
}

// authorize answers one challenge of type typ for each authorization of
// the order and waits for the CA's verdict.
func (m *Manager) authorize(ctx context.Context, acct acme.Account, order acme.Order, typ string, report Progress) (string, error) {
	used := ""
	for _, u := range order.Authorizations {
		authz, err := m.acme.GetAuthorization(ctx, acct, u)
		if err != nil {
			return "", err
		}
		if authz.Status == acme.StatusValid {
			report("the CA still holds a valid authorization for " + authz.IdentifierValue())
			continue
		}
		i := slices.IndexFunc(authz.Challenges, func(c acme.Challenge) bool { return c.Type == typ })
		if i < 0 {
			var offered []string
			for _, c := range authz.Challenges {
				offered = append(offered, c.Type)
			}
			return "", fmt.Errorf("%w: %s (offered: %s)", errNotOffered, typ, strings.Join(offered, ", "))
		}
		ch := authz.Challenges[i]
		if err := m.ch.present(ch); err != nil {
			return "", err
		}
		report(describe(typ))
		_, err = m.acme.InitiateChallenge(ctx, acct, ch)
		if err == nil {
			_, err = m.acme.PollAuthorization(ctx, acct, authz)
		}
		m.ch.cleanUp(ch)
		if err != nil {
			return "", err
		}
		used = typ
		report(typ + " validated")
	}
	return used, nil
}

func describe(typ string) string {
	switch typ {
	case TLSALPN01:
		return "answering tls-alpn-01 through the tunnel (443 path, ALPN acme-tls/1)"
	case HTTP01:
		return "answering http-01 through the tunnel (80 path, /.well-known/acme-challenge/)"
	}
	return "answering " + typ
}

// account returns the profile's account with the CA, registering it on
// first use (registering a known key returns the existing account).
func (m *Manager) account(ctx context.Context, report Progress) (acme.Account, error) {
	m.acctMu.Lock()
	defer m.acctMu.Unlock()
	if m.acct != nil {
		return *m.acct, nil
	}
	key, err := m.store.accountKey(m.cfg.CA)
	if err != nil {
		return acme.Account{}, fmt.Errorf("the ACME account key: %w", err)
	}
	want := acme.Account{PrivateKey: key, TermsOfServiceAgreed: true}
	if m.cfg.Email != "" {
		want.Contact = []string{"mailto:" + m.cfg.Email}
	}
	acct, err := m.acme.NewAccount(ctx, want)
	if err != nil {
		return acme.Account{}, err
	}
	acct.PrivateKey = key
	if m.cfg.Email != "" && !slices.Equal(acct.Contact, want.Contact) {
		acct.Contact = want.Contact
		if updated, err := m.acme.UpdateAccount(ctx, acct); err == nil {
			acct = updated
			acct.PrivateKey = key
		} else {
			m.log.Warn("certs: updating the account's contact", "err", err)
		}
	}
	report("ACME account " + acct.Location)
	m.acct = &acct
	return acct, nil
}
