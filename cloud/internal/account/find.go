package account

import (
	"context"

	"homeport.dev/cloud/internal/paging"
	"homeport.dev/cloud/internal/store"
)

// Filter selects users for a list.
type Filter struct {
	Role   string // "" for any
	Active *bool  // nil for both
	Page   paging.Page
}

// Find returns one page of the users f selects, ordered by name, and the
// cursor of the next page ("" on the last).
func (s *Service) Find(ctx context.Context, f Filter) ([]store.User, string, error) {
	q := s.db.WithContext(ctx)
	if f.Role != "" {
		if err := ValidateRole(f.Role); err != nil {
			return nil, "", err
		}
		q = q.Where("role = ?", f.Role)
	}
	if f.Active != nil {
		q = q.Where("active = ?", *f.Active)
	}
	return paging.Find(q, f.Page, "username", false, func(u store.User) string { return u.Username })
}
