package homes

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
	"gorm.io/gorm"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// Bandwidth limits a home may have, in kbit/s.
const (
	MinLimitKbps = 100
	MaxLimitKbps = 10_000_000
)

// Service manages home slots.
type Service struct {
	db           *store.DB
	layout       Layout
	homesPerUser int
	changed      func(store.Home) // called after a committed change; never nil
	canLimit     func() error     // nil when limits can be enforced; never nil
	pickEdge     func(tx *gorm.DB) (string, error)
	edgeUp       func(ctx context.Context, edge string) error
}

// Options configure a Service.
type Options struct {
	Layout       Layout
	HomesPerUser int
	// Changed, if set, is called after a claim, change or release commits, so
	// the data plane (HAProxy, tc, SSH sessions) can follow the database.
	Changed func(store.Home)
	// LimitsAvailable, if set, reports why bandwidth limits cannot be
	// enforced right now (nil when they can). Patch then refuses a new limit
	// rather than store one nothing enforces; clearing a limit always works.
	LimitsAvailable func() error
	// PickEdge, if set, chooses a new home's edge inside the claim's
	// transaction (edges.Registry.Pick); EdgeUp refuses a move to an edge
	// that is unknown or down. Without them every home is the single
	// cloud's (edge "").
	PickEdge func(tx *gorm.DB) (string, error)
	EdgeUp   func(ctx context.Context, edge string) error
}

// New returns a home service over db.
func New(db *store.DB, o Options) (*Service, error) {
	if err := o.Layout.Validate(); err != nil {
		return nil, err
	}
	if o.HomesPerUser < 1 {
		return nil, fmt.Errorf("homes per user must be at least 1, got %d", o.HomesPerUser)
	}
	if o.Changed == nil {
		o.Changed = func(store.Home) {}
	}
	if o.LimitsAvailable == nil {
		o.LimitsAvailable = func() error { return nil }
	}
	if o.PickEdge == nil {
		o.PickEdge = func(*gorm.DB) (string, error) { return "", nil }
	}
	if o.EdgeUp == nil {
		o.EdgeUp = func(_ context.Context, edge string) error {
			return problem.New(problem.Invalid, "this cloud has no edges (cloud serve --edge NAME on a shared PostgreSQL)")
		}
	}
	return &Service{db: db, layout: o.Layout, homesPerUser: o.HomesPerUser, changed: o.Changed, canLimit: o.LimitsAvailable,
		pickEdge: o.PickEdge, edgeUp: o.EdgeUp}, nil
}

// Layout returns the slot layout.
func (s *Service) Layout() Layout { return s.layout }

// Claim gives u the lowest free slot for the SSH key publicKey.
func (s *Service) Claim(ctx context.Context, u store.User, publicKey string) (store.Home, error) {
	key, canonical, err := ParseKey(publicKey)
	if err != nil {
		return store.Home{}, problem.InvalidField("public_key", err)
	}
	h := store.Home{UserID: u.ID, PublicKey: canonical, KeyFingerprint: ssh.FingerprintSHA256(key)}
	for attempt := 0; ; attempt++ {
		h.Slug, err = newSlug()
		if err != nil {
			return store.Home{}, err
		}
		err = s.db.Tx(ctx, func(tx *gorm.DB) error { return s.claim(tx, &h) })
		// A slug collision (1 in 36^7 per pair) is retried; any other clash is the answer.
		if store.IsDuplicate(err) && attempt < 3 && s.slugTaken(ctx, h.Slug) {
			continue
		}
		break
	}
	if store.IsDuplicate(err) {
		// Lost a race the in-transaction checks could not see (another database).
		return store.Home{}, problem.New(problem.Conflict, "another claim took this slot or key at the same moment; try again")
	}
	if err != nil {
		return store.Home{}, err
	}
	s.changed(h)
	return h, nil
}

func (s *Service) claim(tx *gorm.DB, h *store.Home) error {
	if err := store.Guard(tx, store.GuardHomes); err != nil { // the quota and the slot hold on any engine
		return err
	}
	var n int64
	if err := tx.Model(&store.Home{}).Where("user_id = ?", h.UserID).Count(&n).Error; err != nil {
		return err
	}
	if n >= int64(s.homesPerUser) {
		return problem.New(problem.Quota, "you already have %d home(s), the most allowed per user; release one first", n)
	}
	if err := s.keyFree(tx, h.KeyFingerprint, 0); err != nil {
		return err
	}
	var used []int
	if err := tx.Model(&store.Home{}).Pluck("slot", &used).Error; err != nil {
		return err
	}
	slot, ok := LowestFree(used, 0, s.layout.Slots-1)
	if !ok {
		return problem.New(problem.NoCapacity, "all %d home slots of this cloud are taken; ask the admin to add slots", s.layout.Slots)
	}
	h.Slot = slot
	edge, err := s.pickEdge(tx)
	if err != nil {
		return err
	}
	h.Edge = edge
	if err := tx.Create(h).Error; err != nil {
		return err
	}
	after := map[string]any{"slot": h.Slot, "key_fingerprint": h.KeyFingerprint}
	if h.Edge != "" {
		after["edge"] = h.Edge
	}
	return audit.Record(tx, audit.Entry{Kind: "home.claim", Home: h.Slug, Target: h.Slug, OwnerID: h.UserID, After: after})
}

func (s *Service) keyFree(tx *gorm.DB, fingerprint string, self uint64) error {
	var n int64
	if err := tx.Model(&store.Home{}).Where("key_fingerprint = ? AND id <> ?", fingerprint, self).Count(&n).Error; err != nil {
		return err
	}
	if n > 0 {
		return &problem.Error{Kind: problem.Conflict, Field: "public_key", Message: "this SSH key already identifies another home; generate a new key for each home (home keygen)"}
	}
	return nil
}

func (s *Service) slugTaken(ctx context.Context, slug string) bool {
	var n int64
	s.db.WithContext(ctx).Model(&store.Home{}).Where("slug = ?", slug).Count(&n)
	return n > 0
}

// Get returns u's home with the given slug. Another user's home is reported
// as not found, so slugs cannot be probed.
func (s *Service) Get(ctx context.Context, u store.User, slug string) (store.Home, error) {
	return s.get(ctx, s.db.WithContext(ctx).Where("user_id = ?", u.ID), slug)
}

// GetAny returns any home by slug (admin use).
func (s *Service) GetAny(ctx context.Context, slug string) (store.Home, error) {
	return s.get(ctx, s.db.WithContext(ctx), slug)
}

func (s *Service) get(ctx context.Context, q *gorm.DB, slug string) (store.Home, error) {
	var h store.Home
	err := q.Preload("User").Where("slug = ?", slug).Take(&h).Error
	if store.IsNotFound(err) {
		return h, problem.New(problem.NotFound, "you have no home %s", proto.Printable(slug))
	}
	return h, err
}

// List returns u's homes.
func (s *Service) List(ctx context.Context, u store.User) ([]store.Home, error) {
	var hs []store.Home
	err := s.db.WithContext(ctx).Preload("User").Where("user_id = ?", u.ID).Order("slot").Find(&hs).Error
	return hs, err
}

// ListAll returns every home (admin use).
func (s *Service) ListAll(ctx context.Context) ([]store.Home, error) {
	var hs []store.Home
	err := s.db.WithContext(ctx).Preload("User").Order("slot").Find(&hs).Error
	return hs, err
}

// ValidateLimit checks a bandwidth limit in kbit/s.
func ValidateLimit(kbps int64) error {
	if kbps < MinLimitKbps || kbps > MaxLimitKbps {
		return fmt.Errorf("bandwidth limit %d kbit/s is out of range: use %d..%d, or null for no limit", kbps, MinLimitKbps, MaxLimitKbps)
	}
	return nil
}

// Patch changes a home's key and/or bandwidth limit. Everything is validated
// before anything is written.
func (s *Service) Patch(ctx context.Context, h store.Home, req proto.PatchHomeRequest) (store.Home, error) {
	updates := map[string]any{}
	if req.PublicKey != nil {
		key, canonical, err := ParseKey(*req.PublicKey)
		if err != nil {
			return h, problem.InvalidField("public_key", err)
		}
		updates["public_key"] = canonical
		updates["key_fingerprint"] = ssh.FingerprintSHA256(key)
	}
	if req.BandwidthLimitKbps.Set {
		if v := req.BandwidthLimitKbps.Value; v != nil {
			if err := ValidateLimit(*v); err != nil {
				return h, problem.InvalidField("bandwidth_limit_kbps", err)
			}
			if err := s.canLimit(); err != nil {
				return h, &problem.Error{Kind: problem.Unavailable, Field: "bandwidth_limit_kbps",
					Message: fmt.Sprintf("bandwidth limits cannot be enforced on this cloud right now (%v); nothing was changed: try again later, ask the admin, or send null for no limit", err)}
			}
			updates["bandwidth_limit_kbps"] = *v
		} else {
			updates["bandwidth_limit_kbps"] = nil
		}
	}
	if len(updates) == 0 {
		return h, problem.New(problem.Invalid, "nothing to change: send public_key and/or bandwidth_limit_kbps")
	}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if fp, ok := updates["key_fingerprint"].(string); ok {
			if err := s.keyFree(tx, fp, h.ID); err != nil {
				return err
			}
		}
		var old store.Home
		if err := tx.Take(&old, h.ID).Error; err != nil {
			if store.IsNotFound(err) {
				return problem.New(problem.NotFound, "home %s was released meanwhile", h.Slug)
			}
			return err
		}
		res := tx.Model(&store.Home{}).Where("id = ?", h.ID).Updates(updates)
		if res.Error == nil && res.RowsAffected == 0 {
			return problem.New(problem.NotFound, "home %s was released meanwhile", h.Slug)
		}
		if res.Error != nil {
			return res.Error
		}
		return recordPatch(tx, old, updates)
	})
	if store.IsDuplicate(err) {
		return h, &problem.Error{Kind: problem.Conflict, Field: "public_key", Message: "this SSH key already identifies another home"}
	}
	if err != nil {
		return h, err
	}
	if err := s.db.WithContext(ctx).Preload("User").Take(&h, h.ID).Error; err != nil {
		return h, err
	}
	s.changed(h)
	return h, nil
}

// Move assigns h to another edge (an admin's choice): the old edge drops its
// connection and routes, the new one takes them, and the home's agent, told
// the new endpoint by the API, reconnects there.
func (s *Service) Move(ctx context.Context, h store.Home, edge string) (store.Home, error) {
	if err := s.edgeUp(ctx, edge); err != nil {
		return h, &problem.Error{Kind: problem.Invalid, Field: "edge", Message: err.Error()}
	}
	if h.Edge == edge {
		return h, nil
	}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&store.Home{}).Where("id = ?", h.ID).Update("edge", edge)
		if res.Error == nil && res.RowsAffected == 0 {
			return problem.New(problem.NotFound, "home %s was released meanwhile", h.Slug)
		}
		if res.Error != nil {
			return res.Error
		}
		return audit.Record(tx, audit.Entry{Kind: "home.move", Home: h.Slug, Target: h.Slug, OwnerID: h.UserID,
			Before: map[string]any{"edge": h.Edge}, After: map[string]any{"edge": edge}})
	})
	if err != nil {
		return h, err
	}
	h.Edge = edge
	s.changed(h)
	return h, nil
}

// Release frees a home's slot and deletes everything it owned (mappings, base
// domains, bandwidth limit) in one transaction, so the slot is clean for the
// next user.
func (s *Service) Release(ctx context.Context, h store.Home) error {
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("home_id = ?", h.ID).Delete(&store.Mapping{}).Error; err != nil {
			return err
		}
		if err := tx.Where("home_id = ?", h.ID).Delete(&store.BaseDomain{}).Error; err != nil {
			return err
		}
		res := tx.Delete(&store.Home{}, h.ID)
		if res.Error == nil && res.RowsAffected == 0 {
			return problem.New(problem.NotFound, "home %s was already released", h.Slug)
		}
		if res.Error != nil {
			return res.Error
		}
		return audit.Record(tx, audit.Entry{Kind: "home.release", Home: h.Slug, Target: h.Slug, OwnerID: h.UserID,
			Before: map[string]any{"slot": h.Slot, "key_fingerprint": h.KeyFingerprint, "bandwidth_limit_kbps": h.BandwidthLimitKbps}})
	})
	if err != nil {
		return err
	}
	s.changed(h)
	return nil
}

// ByFingerprint returns the home an SSH key identifies (the SSH endpoint's
// authentication).
func (s *Service) ByFingerprint(ctx context.Context, fingerprint string) (store.Home, error) {
	var h store.Home
	err := s.db.WithContext(ctx).Where("key_fingerprint = ?", fingerprint).Take(&h).Error
	if store.IsNotFound(err) {
		return h, errors.New("unknown key")
	}
	return h, err
}

const slugAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// newSlug returns a random 8-character slug that starts with a letter, so it
// is a valid SSH user name and DNS label.
func newSlug() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		n := len(slugAlphabet)
		if i == 0 {
			n = 26
		}
		b[i] = slugAlphabet[int(b[i])%n]
	}
	return string(b), nil
}

// ByID returns a home by its ID.
func (s *Service) ByID(ctx context.Context, id uint64) (store.Home, error) {
	var h store.Home
	err := s.db.WithContext(ctx).Take(&h, id).Error
	return h, err
}

// recordPatch writes the audit records of a Patch of old: one for a new key
// (by fingerprint) and one for a new limit.
func recordPatch(tx *gorm.DB, old store.Home, updates map[string]any) error {
	e := audit.Entry{Home: old.Slug, Target: old.Slug, OwnerID: old.UserID}
	if fp, ok := updates["key_fingerprint"]; ok {
		e.Kind, e.Before, e.After = "home.key", map[string]any{"key_fingerprint": old.KeyFingerprint}, map[string]any{"key_fingerprint": fp}
		if err := audit.Record(tx, e); err != nil {
			return err
		}
	}
	if limit, ok := updates["bandwidth_limit_kbps"]; ok {
		e.Kind, e.Before, e.After = "home.limit", map[string]any{"bandwidth_limit_kbps": old.BandwidthLimitKbps}, map[string]any{"bandwidth_limit_kbps": limit}
		if err := audit.Record(tx, e); err != nil {
			return err
		}
	}
	return nil
}
