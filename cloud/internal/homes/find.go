package homes

import (
	"context"
	"strconv"

	"homeport.dev/cloud/internal/paging"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// Filter selects homes for a list.
type Filter struct {
	ID      uint64 // this home only (a home's own credential); 0 for any
	OwnerID uint64 // one account's homes; 0 for every account's
	Owner   string // the owner's username (admin lists); "" for any
	Page    paging.Page
}

// Find returns one page of the homes f selects, ordered by slot, and the
// cursor of the next page ("" on the last).
func (s *Service) Find(ctx context.Context, f Filter) ([]store.Home, string, error) {
	q := s.db.WithContext(ctx).Preload("User")
	if f.ID != 0 {
		q = q.Where("homes.id = ?", f.ID)
	}
	if f.OwnerID != 0 {
		q = q.Where("homes.user_id = ?", f.OwnerID)
	}
	if f.Owner != "" {
		if err := proto.ValidateUsername(f.Owner); err != nil {
			return nil, "", problem.InvalidField("owner", err)
		}
		q = q.Where("homes.user_id IN (SELECT id FROM users WHERE username = ?)", f.Owner)
	}
	return paging.Find(q, f.Page, "homes.slot", true, func(h store.Home) string { return strconv.Itoa(h.Slot) })
}
