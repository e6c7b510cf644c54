package mappings

import (
	"context"
	"fmt"
	"regexp"
	"strconv"

	"homeport.dev/cloud/internal/paging"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// Filter selects mappings for a list.
type Filter struct {
	HomeID uint64 // one home's mappings; 0 for every home's (admin)
	Home   string // a home's slug (admin lists); "" for any
	Scheme string // "" for any
	Page   paging.Page
}

var slugSyntax = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// Find returns one page of the mappings f selects, with their home, ordered
// by ID, and the cursor of the next page ("" on the last).
func (s *Service) Find(ctx context.Context, f Filter) ([]store.Mapping, string, error) {
	q := s.db.WithContext(ctx).Preload("Home")
	if f.HomeID != 0 {
		q = q.Where("mappings.home_id = ?", f.HomeID)
	}
	if f.Home != "" {
		if !slugSyntax.MatchString(f.Home) {
			return nil, "", problem.InvalidField("home", fmt.Errorf("%s is not a home name", proto.Printable(f.Home)))
		}
		q = q.Where("mappings.home_id IN (SELECT id FROM homes WHERE slug = ?)", f.Home)
	}
	if f.Scheme != "" {
		if err := proto.ValidateScheme(f.Scheme); err != nil {
			return nil, "", problem.InvalidField("scheme", err)
		}
		q = q.Where("mappings.scheme = ?", f.Scheme)
	}
	return paging.Find(q, f.Page, "mappings.id", true, func(m store.Mapping) string { return strconv.FormatUint(m.ID, 10) })
}
