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
	"slices"
	"strings"
	"sync"
	"time"

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
