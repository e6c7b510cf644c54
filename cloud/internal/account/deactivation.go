package account

import (
	"context"
	"slices"
	"time"

	"homeport.dev/cloud/internal/store"
)

// Active reports whether the account userID is active (approved and not
// deactivated); the SSH endpoint asks it at every login.
func (s *Service) Active(ctx context.Context, userID uint64) (bool, error) {
	var u store.User
	if err := s.db.WithContext(ctx).Select("active").Where("id = ?", userID).Take(&u).Error; err != nil {
		return false, err
	}
	return u.Active, nil
}

// deletedOffline is how long a deleted account's ID stays among the owners
// whose homes must be offline: every cloud process sharing the database
// polls far more often, so each sees it and closes what it still holds of
// that account (its homes are released before the account goes).
const deletedOffline = time.Minute

// InactiveOwners returns, sorted, the IDs of inactive accounts that own a
// home, and of accounts deleted within deletedOffline: the accounts whose
// homes must be offline. The set is bounded by the number of home slots
// (and of recent deletions), whatever the number of pending signups.
func (s *Service) InactiveOwners(ctx context.Context) ([]uint64, error) {
	var ids, deleted []uint64
	db := s.db.WithContext(ctx)
	err := db.Model(&store.Home{}).
		Joins("JOIN users ON users.id = homes.user_id").
		Where("users.active = ?", false).
		Distinct().Order("homes.user_id").Pluck("homes.user_id", &ids).Error
	if err != nil {
		return nil, err
	}
	err = db.Model(&store.DeletedUser{}).Where("deleted_at > ?", time.Now().UTC().Add(-deletedOffline)).Pluck("id", &deleted).Error
	if err != nil || len(deleted) == 0 {
		return ids, err
	}
	ids = append(ids, deleted...)
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// WatchInactive calls apply with InactiveOwners every interval until ctx
// ends, and says whether the set changed since the previous call (the first
// call counts as a change). It reads the database, not an in-process event,
// so it sees a deactivation made by any process sharing the database: the
// `cloud users` CLI, the API, another cloud node. A failed read is retried on
// the next tick.
func (s *Service) WatchInactive(ctx context.Context, interval time.Duration, apply func(inactive []uint64, changed bool)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last []uint64
	first := true
	for {
		qctx, cancel := context.WithTimeout(ctx, interval*4)
		ids, err := s.InactiveOwners(qctx)
		cancel()
		if err == nil {
			apply(ids, first || !slices.Equal(ids, last))
			last, first = ids, false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
