// Package certorders counts the certificates homes obtain, per registered
// domain over the last week, as an ACME CA's rate limits do (Let's Encrypt:
// 50 new certificates per registered domain per week). Every name under a
// shared domain that is not on the Public Suffix List counts against one
// registered domain for all homes together, so the operator is warned before
// the CA starts refusing, and one home cannot order without bound.
package certorders

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/domains"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// Week is the window the CA counts orders in, and how long they are kept.
const Week = 7 * 24 * time.Hour

// Defaults.
const (
	// DefaultPerHome is how many orders one home may report per week: ample
	// for renewals of all its names, far below a CA's per-domain limit.
	DefaultPerHome = 100
	// DefaultWarnAt is the orders per registered domain per week from which
	// the cloud warns: Let's Encrypt refuses from 50.
	DefaultWarnAt = 40
	// warnEvery spaces the warnings about one registered domain.
	warnEvery = time.Hour
)

// Options configure a Service.
type Options struct {
	Shared   string // the cloud's shared domain, "" when none
	PerHome  int    // 0: DefaultPerHome
	WarnAt   int    // 0: DefaultWarnAt
	Log      *slog.Logger
	Registry prometheus.Registerer
	Now      func() time.Time // nil: time.Now
}

// Service records and counts certificate orders.
type Service struct {
	db *store.DB
	o  Options

	mu     sync.Mutex
	warned map[string]time.Time // registered domain -> last warning
}

// New returns a Service; its metric, homeport_certificate_orders_week, is
// registered on o.Registry with two series only (domain="all" and, with a
// shared domain, domain=SHARED), never one per tenant's domain.
func New(db *store.DB, o Options) *Service {
	if o.PerHome <= 0 {
		o.PerHome = DefaultPerHome
	}
	if o.WarnAt <= 0 {
		o.WarnAt = DefaultWarnAt
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{db: db, o: o, warned: map[string]time.Time{}}
	if o.Registry != nil {
		o.Registry.MustRegister(s)
	}
	return s
}

// Record counts a certificate home h obtained for host, one of its mappings'
// hosts. It refuses (429) a home's order beyond its weekly budget, and logs
// a warning when host's registered domain nears the CA's weekly limit.
func (s *Service) Record(ctx context.Context, h store.Home, raw string) (store.CertificateOrder, error) {
	host := proto.NormalizeHostname(raw)
	if err := proto.ValidateHostname(host); err != nil {
		return store.CertificateOrder{}, problem.InvalidField("host", err)
	}
	domain, err := domains.Registered(host)
	if err != nil {
		return store.CertificateOrder{}, problem.InvalidField("host", err)
	}
	now := s.o.Now().UTC()
	since := now.Add(-Week)
	o := store.CertificateOrder{HomeID: h.ID, Host: host, Domain: domain, CreatedAt: now}
	var sameDomain int64
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := store.Guard(tx, store.GuardCertificates(h.ID)); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&store.Mapping{}).Where("home_id = ? AND host = ?", h.ID, host).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return &problem.Error{Kind: problem.NotFound, Field: "host", Message: fmt.Sprintf("home %s has no mapping for %s; report only certificates of its own mappings' hosts", h.Slug, host)}
		}
		if err := tx.Where("created_at < ?", since).Delete(&store.CertificateOrder{}).Error; err != nil {
			return err
		}
		if err := tx.Model(&store.CertificateOrder{}).Where("home_id = ? AND created_at >= ?", h.ID, since).Count(&n).Error; err != nil {
			return err
		}
		if n >= int64(s.o.PerHome) {
			return problem.New(problem.RateLimited, "home %s has reported %d certificates in the last 7 days, the most allowed; reuse the ones it has (renew them near expiry only)", h.Slug, n)
		}
		if err := tx.Create(&o).Error; err != nil {
			return err
		}
		if err := audit.Record(tx, audit.Entry{Kind: "certificate.report", Home: h.Slug, OwnerID: h.UserID, Target: host,
			After: map[string]any{"host": host, "domain": domain}}); err != nil {
			return err
		}
		return tx.Model(&store.CertificateOrder{}).Where("domain = ? AND created_at >= ?", domain, since).Count(&sameDomain).Error
	})
	if err != nil {
		return store.CertificateOrder{}, err
	}
	if sameDomain >= int64(s.o.WarnAt) {
		s.warn(domain, sameDomain, now)
	}
	return o, nil
}

// RecentByHome counts each home's reported certificates of the last 7 days
// (the operator's dashboard shows them).
func (s *Service) RecentByHome(ctx context.Context) (map[uint64]int, error) {
	var rows []struct {
		HomeID uint64
		N      int
	}
	err := s.db.WithContext(ctx).Model(&store.CertificateOrder{}).Select("home_id, count(*) as n").
		Where("created_at >= ?", s.o.Now().UTC().Add(-Week)).Group("home_id").Scan(&rows).Error
	out := make(map[uint64]int, len(rows))
	for _, r := range rows {
		out[r.HomeID] = r.N
	}
	return out, err
}

// warn logs that domain nears the CA's limit, at most once per warnEvery.
func (s *Service) warn(domain string, n int64, now time.Time) {
	s.mu.Lock()
	last, ok := s.warned[domain]
	if ok && now.Sub(last) < warnEvery {
		s.mu.Unlock()
		return
	}
	s.warned[domain] = now
	s.mu.Unlock()
	msg := "certificate orders for a registered domain near the CA's weekly limit (Let's Encrypt: 50); new names and renewals under it may be refused"
	args := []any{"domain", domain, "orders_7d", n}
	if sh := s.o.Shared; sh != "" && domains.Covers(domain, sh) {
		args = append(args, "fix", "register the shared domain "+sh+" on the Public Suffix List (https://publicsuffix.org), so each home's names count on their own")
	}
	s.o.Log.Warn(msg, args...)
}

// ToProto converts an order for the API.
func ToProto(o store.CertificateOrder) proto.CertificateOrder {
	return proto.CertificateOrder{Host: o.Host, Domain: o.Domain, CreatedAt: o.CreatedAt}
}

var ordersDesc = prometheus.NewDesc("homeport_certificate_orders_week",
	"Certificates homes reported obtaining in the last 7 days: domain=\"all\" in total, domain=SHARED for names under the shared domain.",
	[]string{"domain"}, nil)

// Describe implements prometheus.Collector.
func (s *Service) Describe(ch chan<- *prometheus.Desc) { ch <- ordersDesc }

// Collect implements prometheus.Collector, reading the database at scrape
// time so the figures are always the truth.
func (s *Service) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	since := s.o.Now().UTC().Add(-Week)
	count := func(label string, q func(*gorm.DB) *gorm.DB) {
		var n int64
		if err := q(s.db.WithContext(ctx).Model(&store.CertificateOrder{}).Where("created_at >= ?", since)).Count(&n).Error; err != nil {
			n = -1
		}
		ch <- prometheus.MustNewConstMetric(ordersDesc, prometheus.GaugeValue, float64(n), label)
	}
	count("all", func(q *gorm.DB) *gorm.DB { return q })
	if sh := s.o.Shared; sh != "" {
		// A validated shared domain holds no LIKE wildcard ('%', '_').
		count(sh, func(q *gorm.DB) *gorm.DB { return q.Where("host LIKE ?", "%."+strings.ToLower(sh)) })
	}
}
