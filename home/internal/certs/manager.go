// Package certs owns the home's TLS certificates: obtaining them from an
// ACME CA (Let's Encrypt by default) with one account per profile,
// answering the CA's challenges on the home itself through the tunnel
// (TLS-ALPN-01 on the 443 path, HTTP-01 on the 80 path, via the gateway),
// keeping them in the profile's certificates directory (keys 0600, never
// sent anywhere), renewing them ahead of expiry with retries and backoff,
// and serving them to the gateway for terminated https entries.
//
// Each domain's certificate is a small state machine, observable as Info:
// pending (none yet) -> valid until DATE -> renewing -> valid ..., with
// failed: reason when an attempt fails, in which case the previous
// certificate stays in service and the attempt is retried later.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"homeport.dev/proto"
)

// Config configures a Manager. Dir and CA are required.
type Config struct {
	// Dir is the profile's certificates directory (created 0700).
	Dir string
	// CA is the ACME directory URL.
	CA string
	// Email is the account's contact; optional.
	Email string
	// Roots, if set, are the roots trusted for the CA's own HTTPS instead of
	// the system's (a private CA; Pebble in tests).
	Roots *x509.CertPool
	// DisableTLSALPN and DisableHTTP01 turn a challenge type off.
	DisableTLSALPN, DisableHTTP01 bool
	// DeployPath, if set, receives DeployPath/<domain>/fullchain.pem and
	// privkey.pem after every issuance.
	DeployPath string
	// Profile is the ACME certificate profile to order (empty: the CA's
	// default).
	Profile string
	// Cloud is the cloud's host name, named in DNS advice.
	Cloud string
	// RenewWindow is the fraction of a certificate's lifetime left when
	// renewal starts; default DefaultRenewWindow.
	RenewWindow float64
	// RetryMin and RetryMax bound the backoff between failed attempts.
	RetryMin, RetryMax time.Duration
	// AttemptTimeout bounds one issuance; default 3 minutes.
	AttemptTimeout time.Duration
	// CheckInterval is the longest sleep of the renewal loop; default 1h.
	CheckInterval time.Duration
	// PollInterval is how often the CA is asked whether a validation or an
	// order is done (when it does not say); default 250ms.
	PollInterval time.Duration
	// Log receives events with the keys home, domain, challenge and err.
	Log *slog.Logger
	// Issued, if set, is told of every certificate obtained (the agent
	// reports it to the cloud, which counts orders per registered domain
	// against the CA's rate limits). ctx bounds it.
	Issued func(ctx context.Context, domain string)
}

// Domain is a name the home exposes, as the agent sees it now. Only
// domains given to SetDomains are issued for.
type Domain struct {
	Name string
	// Auto: obtain and renew without being asked (an https entry that
	// terminates TLS, or one with a deploy path).
	Auto bool
	// DeployPath, if set, receives fullchain.pem and privkey.pem after
	// every issuance (the entry's own copy target).
	DeployPath string
	// TLSALPN: an https mapping's forward is up, so the CA's TLS-ALPN-01
	// connection on 443 reaches the home.
	TLSALPN bool
	// HTTP01: the CA's request on 80 reaches the home (an http entry's
	// forward, or the cloud's ACME route to an https-only entry).
	HTTP01 bool
	// Down and Why say why neither path is live (NoMapping: not mapped in
	// the cloud; NotConnected: the tunnel forward is down).
	Down Reason
	Why  string
}

// Progress receives the steps of an issuance as they happen.
type Progress func(step string)

// Manager obtains, renews, stores and serves the home's certificates.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	store store
	acme  *acme.Client
	ch    *challenges

	ctx    context.Context // owns the attempts; Close ends it
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}

	acctMu sync.Mutex
	acct   *acme.Account

	mu      sync.Mutex
	certs   map[string]*domainState
	domains map[string]Domain
	subs    map[chan struct{}]struct{}
}

// domainState is one domain's certificate and the attempts to get one.
type domainState struct {
	cur       *stored // in service; nil before the first issuance
	run       *attempt
	err       error // of the last attempt; nil after a success
	failures  int   // consecutive
	next      time.Time
	deployErr string
}

// attempt is one running issuance; Issue and Renew calls for the same
// domain join it.
type attempt struct {
	done     chan struct{}
	err      error
	watchers []Progress // guarded by Manager.mu
}

// New loads the stored certificates and prepares the ACME client. Nothing
// is contacted until a certificate is needed.
func New(cfg Config) (*Manager, error) {
	if cfg.Dir == "" || cfg.CA == "" {
		return nil, errors.New("certs: Dir and CA are required")
	}
	if cfg.RenewWindow <= 0 || cfg.RenewWindow >= 1 {
		cfg.RenewWindow = DefaultRenewWindow
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 3 * time.Minute
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := store{dir: cfg.Dir}
	if err := s.init(); err != nil {
		return nil, err
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		TLSClientConfig:     &tls.Config{RootCAs: cfg.Roots, MinVersion: tls.VersionTLS12},
		IdleConnTimeout:     90 * time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg: cfg, log: cfg.Log, store: s, ch: newChallenges(),
		acme: &acme.Client{
			Directory:    cfg.CA,
			HTTPClient:   &http.Client{Transport: transport, Timeout: 30 * time.Second},
			UserAgent:    "homeport",
			PollInterval: cfg.PollInterval,
			PollTimeout:  cfg.AttemptTimeout,
		},
		ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1),
		certs: map[string]*domainState{}, domains: map[string]Domain{}, subs: map[chan struct{}]struct{}{},
	}
	all, errs := s.all()
	for _, err := range errs {
		m.log.Warn("certs: a stored certificate is unusable and will be obtained again", "err", err)
	}
	for name, st := range all {
		m.certs[name] = &domainState{cur: st}
	}
	return m, nil
}

// Close stops the renewal loop and running attempts and waits for them.
// Certificates already obtained stay served.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
}

// Run renews and obtains certificates of the domains set with SetDomains
// until ctx ends or Close: each one when it is due (RenewWindow of its
// lifetime left, or none yet), and a failed one after its backoff.
func (m *Manager) Run(ctx context.Context) {
	for {
		next, started := m.maintain(time.Now())
		if started {
			m.notify()
		}
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-m.ctx.Done():
			timer.Stop()
			return
		case <-m.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// maintain starts the attempts that are due and returns when to look again.
func (m *Manager) maintain(now time.Time) (next time.Time, started bool) {
	earliest := now.Add(m.cfg.CheckInterval)
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, d := range m.domains {
		e := m.certs[name]
		if !d.Auto && (e == nil || e.cur == nil) || e != nil && e.run != nil {
			continue
		}
		due := m.dueLocked(e)
		if e != nil && e.next.After(due) {
			due = e.next
		}
		if due.After(now) {
			earliest = minTime(earliest, due)
			continue
		}
		if !d.TLSALPN && !d.HTTP01 {
			continue // SetDomains wakes the loop when a path comes up
		}
		m.startLocked(name, d, nil)
		started = true
	}
	return earliest, started
}

// dueLocked is when e needs a new certificate: now when it has none or one
// from another CA (acme.ca_url changed), else its renewal time.
func (m *Manager) dueLocked(e *domainState) time.Time {
	if e == nil || e.cur == nil || e.cur.meta.CA != "" && e.cur.meta.CA != m.cfg.CA {
		return time.Time{}
	}
	l := e.cur.leaf()
	return renewAt(l.NotBefore, l.NotAfter, m.cfg.RenewWindow)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// SetDomains replaces the set of names the home exposes (and whether the
// CA can reach each now). Names no longer in it keep their stored
// certificate but are not renewed.
func (m *Manager) SetDomains(ds []Domain) {
	next := make(map[string]Domain, len(ds))
	for _, d := range ds {
		d.Name = strings.ToLower(d.Name)
		next[d.Name] = d
	}
	m.mu.Lock()
	changed := len(next) != len(m.domains)
	for name, d := range next {
		if m.domains[name] != d {
			changed = true
		}
	}
	m.domains = next
	m.mu.Unlock()
	if changed {
		m.kick()
		m.notify()
	}
}

func (m *Manager) kick() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Issue makes sure domain has a valid certificate: it returns the current
// one when it is not due for renewal, else obtains one (or joins the
// attempt under way), reporting the steps to progress (may be nil).
func (m *Manager) Issue(ctx context.Context, domain string, progress Progress) (Info, error) {
	return m.issue(ctx, domain, false, progress)
}

// Renew obtains a new certificate for domain now, even if the current one
// is valid (which stays in service until the new one is there).
func (m *Manager) Renew(ctx context.Context, domain string, progress Progress) (Info, error) {
	return m.issue(ctx, domain, true, progress)
}

func (m *Manager) issue(ctx context.Context, domain string, force bool, progress Progress) (Info, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if err := proto.ValidateHostname(domain); err != nil {
		return Info{Domain: domain}, err
	}
	m.mu.Lock()
	d, known := m.domains[domain]
	e := m.certs[domain]
	var a *attempt
	joined := false
	switch {
	case e != nil && e.run != nil:
		a, joined = e.run, true
		if progress != nil {
			a.watchers = append(a.watchers, progress)
		}
	case !force && e != nil && e.cur != nil && !m.dueLocked(e).Before(time.Now()):
		info := m.infoLocked(domain)
		m.mu.Unlock()
		if progress != nil {
			progress("the current certificate is " + info.Summary() + "; nothing to do (renew replaces it)")
		}
		return info, nil
	case !known:
		m.mu.Unlock()
		return m.Info(domain), noMapping(domain)
	case !d.TLSALPN && !d.HTTP01:
		m.mu.Unlock()
		return m.Info(domain), unready(d)
	default:
		a = m.startLocked(domain, d, progress)
	}
	m.mu.Unlock()
	if joined && progress != nil {
		progress("joining the attempt under way")
	}
	m.notify()
	select {
	case <-a.done:
		return m.Info(domain), a.err
	case <-ctx.Done():
		return m.Info(domain), fmt.Errorf("%s: stopped waiting (the attempt goes on in the background): %w", domain, ctx.Err())
	}
}

// startLocked starts an attempt for d, owned by the Manager; the caller
// notifies subscribers once it has unlocked.
func (m *Manager) startLocked(name string, d Domain, progress Progress) *attempt {
	e := m.certs[name]
	if e == nil {
		e = &domainState{}
		m.certs[name] = e
	}
	a := &attempt{done: make(chan struct{})}
	if progress != nil {
		a.watchers = append(a.watchers, progress)
	}
	e.run = a
	m.wg.Add(1)
	go m.runAttempt(name, d, e, a)
	return a
}

// runAttempt obtains a certificate and records the outcome: on success
// the new certificate replaces the old one at once (new handshakes get it;
// established connections are untouched); on failure the old one stays
// and the next attempt waits for the backoff.
func (m *Manager) runAttempt(name string, d Domain, e *domainState, a *attempt) {
	defer m.wg.Done()
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.AttemptTimeout)
	defer cancel()
	log := m.log.With("domain", name)
	report := func(step string) {
		log.Info("certs: " + step)
		m.mu.Lock()
		ws := slices.Clone(a.watchers)
		m.mu.Unlock()
		for _, w := range ws {
			w(step)
		}
	}
	m.mu.Lock()
	renewing := e.cur != nil
	m.mu.Unlock()
	if renewing {
		report("renewing (the current certificate stays in service meanwhile)")
	} else {
		report("obtaining a certificate")
	}
	st, deployErr, err := m.obtain(ctx, d, report)
	err = explain(name, m.cfg.CA, m.cfg.Cloud, err)
	now := time.Now()
	m.mu.Lock()
	e.run = nil
	if err == nil {
		e.cur, e.err, e.failures, e.next, e.deployErr = st, nil, 0, time.Time{}, deployErr
	} else {
		e.err = err
		e.failures++
		wait := backoff(e.failures, m.cfg.RetryMin, m.cfg.RetryMax)
		var ce *Error
		if errors.As(err, &ce) && ce.Reason == RateLimited {
			wait = max(wait, rateLimitBackoff, time.Until(ce.RetryAfter))
		}
		e.next = now.Add(wait)
	}
	a.err = err
	next := e.next
	m.mu.Unlock()
	if err != nil {
		msg := "certs: attempt failed; retrying later"
		if renewing {
			msg = "certs: attempt failed; the current certificate stays in service"
		}
		log.Warn(msg, "err", err, "next_attempt", next.Format(time.RFC3339))
		report("failed: " + err.Error())
	}
	close(a.done)
	m.notify()
	m.kick()
	if err == nil && m.cfg.Issued != nil {
		ictx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
		m.cfg.Issued(ictx, name)
		cancel()
	}
}

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

// NoChallenge: every challenge type that could reach the name is off.
const NoChallenge Reason = "no-challenge"

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

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}

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
