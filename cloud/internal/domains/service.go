package domains

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// Service manages the base domains of homes.
type Service struct {
	db       *store.DB
	reserved Reserved
	perHome  int // base domains one home may register; 0 = DefaultPerHome
}

// DefaultPerHome is how many base domains one home may register unless
// the operator says otherwise (--domains-per-home): names cost the cloud a
// row and every later overlap check, and nobody proves owning them.
const DefaultPerHome = 16

// New returns a base-domain service over db that keeps reserved from
// tenants and gives each home at most perHome base domains (0: the default).
func New(db *store.DB, reserved Reserved, perHome int) *Service {
	if perHome <= 0 {
		perHome = DefaultPerHome
	}
	return &Service{db: db, reserved: reserved, perHome: perHome}
}

// Ownable refuses (403, naming the rule) a name no tenant may own: an IP
// literal or a reserved name. field names the request field.
func (s *Service) Ownable(field, name string) error {
	if err := s.reserved.Ownable(name); err != nil {
		return &problem.Error{Kind: problem.Forbidden, Field: field, Message: err.Error()}
	}
	return nil
}

// SharedDomain returns the cloud's shared domain, "" when it has none.
func (s *Service) SharedDomain() string { return s.reserved.Shared() }

// SharedHost reports whether host is a name under the shared domain, where
// the home slug needs no base domain; a name there that the home may not
// publish is refused (403, naming the rule). field names the request field.
func (s *Service) SharedHost(field, host, slug string) (under bool, err error) {
	under, err = s.reserved.SharedHost(host, slug)
	if err != nil {
		return under, &problem.Error{Kind: problem.Forbidden, Field: field, Message: err.Error()}
	}
	return under, nil
}

// List returns the base domains of a home, sorted.
func (s *Service) List(ctx context.Context, homeID uint64) ([]store.BaseDomain, error) {
	var ds []store.BaseDomain
	err := s.db.WithContext(ctx).Where("home_id = ?", homeID).Order("domain").Find(&ds).Error
	return ds, err
}

// Register gives a home a base domain after normalising and validating it.
// The overlap check runs inside the write transaction after a guard that
// keeps two registrations from interleaving on any engine; the unique index
// on the domain backs up the equal case.
func (s *Service) Register(ctx context.Context, homeID uint64, raw string) (store.BaseDomain, error) {
	d := proto.NormalizeHostname(raw)
	// An IP literal is refused by Ownable (403, naming the rule), not as bad syntax.
	if err := ValidateBase(d); err != nil && IPLiteral(d) == nil {
		return store.BaseDomain{}, problem.InvalidField("domain", err)
	}
	if err := s.Ownable("domain", d); err != nil {
		return store.BaseDomain{}, err
	}
	bd := store.BaseDomain{HomeID: homeID, Domain: d}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := store.Guard(tx, store.GuardBaseDomains); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&store.BaseDomain{}).Where("home_id = ?", homeID).Count(&n).Error; err != nil {
			return err
		}
		if n >= int64(s.perHome) {
			return problem.New(problem.Quota, "this home has %d base domains, the most allowed; remove one it no longer uses first", n)
		}
		var clash store.BaseDomain
		// Validated LDH names contain no LIKE wildcards (% or _), so the pattern is exact.
		err := tx.Where("domain = ? OR domain IN ? OR domain LIKE ?", d, append(Ancestors(d), ""), "%."+d).
			Take(&clash).Error
		if err == nil {
			return overlapError(d, clash, homeID)
		}
		if !store.IsNotFound(err) {
			return err
		}
		if err := tx.Create(&bd).Error; err != nil {
			return err
		}
		return audit.Record(tx, audit.Entry{Kind: "domain.register", HomeID: homeID, Target: d})
	})
	if store.IsDuplicate(err) {
		return store.BaseDomain{}, problem.New(problem.Conflict, "%s is already registered", d)
	}
	return bd, err
}

func overlapError(d string, clash store.BaseDomain, homeID uint64) error {
	switch {
	case clash.HomeID == homeID && clash.Domain == d:
		return &problem.Error{Kind: problem.Conflict, Field: "domain", Message: fmt.Sprintf("%s is already one of this home's base domains", d)}
	case clash.HomeID == homeID:
		return &problem.Error{Kind: problem.Conflict, Field: "domain", Message: fmt.Sprintf("%s overlaps this home's base domain %s; one of them is enough", d, clash.Domain)}
	case clash.Domain == d:
		return &problem.Error{Kind: problem.Conflict, Field: "domain", Message: fmt.Sprintf("%s is already registered by another home", d)}
	default:
		// Do not reveal the other home's exact names beyond the overlap itself.
		return &problem.Error{Kind: problem.Conflict, Field: "domain", Message: fmt.Sprintf("%s overlaps a domain registered by another home", d)}
	}
}

// Remove deletes a home's base domain, refused while a mapping of the home
// uses a name it covers.
func (s *Service) Remove(ctx context.Context, homeID uint64, raw string) error {
	d := proto.NormalizeHostname(raw)
	if err := proto.ValidateHostname(d); err != nil {
		return problem.InvalidField("domain", err)
	}
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		// The mappings' guard: a mapping created meanwhile under d is seen.
		if err := store.Guard(tx, store.GuardMappings(homeID)); err != nil {
			return err
		}
		var bd store.BaseDomain
		if err := tx.Where("home_id = ? AND domain = ?", homeID, d).Take(&bd).Error; err != nil {
			if store.IsNotFound(err) {
				return problem.New(problem.NotFound, "%s is not a base domain of this home", d)
			}
			return err
		}
		var n int64
		var first store.Mapping
		inUse := func() *gorm.DB {
			return tx.Model(&store.Mapping{}).Where("home_id = ? AND (host = ? OR host LIKE ?)", homeID, d, "%."+d)
		}
		if err := inUse().Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			inUse().Order("host").Take(&first)
			return problem.New(problem.Conflict, "%s is still used by %d mapping(s), e.g. %s://%s; delete them first", d, n, first.Scheme, first.HostName())
		}
		if err := tx.Delete(&bd).Error; err != nil {
			return err
		}
		return audit.Record(tx, audit.Entry{Kind: "domain.remove", HomeID: homeID, Target: d})
	})
}

// Covering returns the base domain of homeID that covers host, or "".
func (s *Service) Covering(ctx context.Context, tx *gorm.DB, homeID uint64, host string) (string, error) {
	var bd store.BaseDomain
	err := tx.WithContext(ctx).Where("home_id = ? AND domain IN ?", homeID, append(Ancestors(host), host)).Take(&bd).Error
	if store.IsNotFound(err) {
		return "", nil
	}
	return bd.Domain, err
}

// Violation is a stored name that breaks a rule made after it was stored
// (an IP literal, a reserved name): reported, never deleted behind the
// owner's back.
type Violation struct {
	Home string // the owning home's slug
	What string // "base domain" or "mapping"
	Name string
	Err  error // the rule it breaks
}

func (v Violation) String() string {
	return fmt.Sprintf("%s %s of home %s: %v", v.What, v.Name, v.Home, v.Err)
}

// Violations lists every base domain and mapping host that a tenant could
// not register today.
func (s *Service) Violations(ctx context.Context) ([]Violation, error) {
	var out []Violation
	var ds []store.BaseDomain
	if err := s.db.WithContext(ctx).Preload("Home").Order("domain").Find(&ds).Error; err != nil {
		return nil, err
	}
	for _, d := range ds {
		if err := s.reserved.Ownable(d.Domain); err != nil {
			out = append(out, Violation{Home: d.Home.Slug, What: "base domain", Name: d.Domain, Err: err})
		}
	}
	var ms []store.Mapping
	if err := s.db.WithContext(ctx).Preload("Home").Where("host IS NOT NULL").Order("host, scheme").Find(&ms).Error; err != nil {
		return nil, err
	}
	for _, m := range ms {
		if under, err := s.reserved.SharedHost(m.HostName(), m.Home.Slug); under {
			if err != nil {
				out = append(out, Violation{Home: m.Home.Slug, What: m.Scheme + " mapping", Name: m.HostName(), Err: err})
			}
			continue
		}
		if err := s.reserved.Ownable(m.HostName()); err != nil {
			out = append(out, Violation{Home: m.Home.Slug, What: m.Scheme + " mapping", Name: m.HostName(), Err: err})
		}
	}
	return out, nil
}
