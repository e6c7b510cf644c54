package account

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// maxTokensPerUser bounds how many tokens one user can pile up.
const maxTokensPerUser = 50

func validateTokenName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "default", nil
	}
	if len(name) > 64 {
		return "", problem.InvalidField("name", fmt.Errorf("token name is longer than 64 characters"))
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", problem.InvalidField("name", fmt.Errorf("token name %s contains control characters", proto.Printable(name)))
		}
	}
	return name, nil
}

// CreateToken issues a new API token for u. The secret is in the result and
// is never stored; only its hash is.
func (s *Service) CreateToken(ctx context.Context, u store.User, name string) (proto.Token, error) {
	name, err := validateTokenName(name)
	if err != nil {
		return proto.Token{}, err
	}
	secret, hash, err := newSecret(TokenPrefix)
	if err != nil {
		return proto.Token{}, err
	}
	t := store.Token{UserID: u.ID, Name: name, Hash: hash}
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := store.Guard(tx, store.GuardTokens(u.ID)); err != nil { // the quota holds on any engine
			return err
		}
		var n int64
		if err := tx.Model(&store.Token{}).Where("user_id = ?", u.ID).Count(&n).Error; err != nil {
			return err
		}
		if n >= maxTokensPerUser {
			return problem.New(problem.Quota, "you already have %d API tokens; delete unused ones first", n)
		}
		if err := tx.Create(&t).Error; err != nil {
			return err
		}
		return audit.Record(tx, tokenEntry("token.create", u, t))
	})
	if err != nil {
		return proto.Token{}, err
	}
	out := tokenToProto(t)
	out.Token = secret
	return out, nil
}

// Tokens lists u's tokens, without secrets.
func (s *Service) Tokens(ctx context.Context, u store.User) ([]proto.Token, error) {
	var ts []store.Token
	if err := s.db.WithContext(ctx).Where("user_id = ?", u.ID).Order("id").Find(&ts).Error; err != nil {
		return nil, err
	}
	out := make([]proto.Token, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenToProto(t))
	}
	return out, nil
}

// RotateToken replaces the secret of u's token id; the old secret stops
// working in the same transaction.
func (s *Service) RotateToken(ctx context.Context, u store.User, id uint64) (proto.Token, error) {
	secret, hash, err := newSecret(TokenPrefix)
	if err != nil {
		return proto.Token{}, err
	}
	var t store.Token
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("id = ? AND user_id = ?", id, u.ID).Take(&t).Error; err != nil {
			if store.IsNotFound(err) {
				return problem.New(problem.NotFound, "you have no token with id %d", id)
			}
			return err
		}
		t.Hash = hash
		if err := tx.Model(&t).Updates(map[string]any{"hash": hash, "last_used_at": nil}).Error; err != nil {
			return err
		}
		return audit.Record(tx, tokenEntry("token.rotate", u, t))
	})
	if err != nil {
		return proto.Token{}, err
	}
	t.LastUsedAt = nil
	out := tokenToProto(t)
	out.Token = secret
	return out, nil
}

// DeleteToken revokes u's token id.
func (s *Service) DeleteToken(ctx context.Context, u store.User, id uint64) error {
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		var t store.Token
		if err := tx.Where("id = ? AND user_id = ?", id, u.ID).Take(&t).Error; err != nil {
			if store.IsNotFound(err) {
				return problem.New(problem.NotFound, "you have no token with id %d", id)
			}
			return err
		}
		if err := tx.Delete(&t).Error; err != nil {
			return err
		}
		return audit.Record(tx, tokenEntry("token.delete", u, t))
	})
}

// tokenEntry is the audit record of a change to u's token t: its ID and
// name, never its secret or hash.
func tokenEntry(kind string, u store.User, t store.Token) audit.Entry {
	return audit.Entry{Kind: kind, Target: fmt.Sprintf("token %d (%s) of %s", t.ID, t.Name, u.Username), OwnerID: u.ID, Who: u.Username,
		After: map[string]any{"id": t.ID, "name": t.Name}}
}

// UserByToken resolves a bearer token to an active user.
func (s *Service) UserByToken(ctx context.Context, secret string) (store.User, error) {
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) > 128 {
		return store.User{}, problem.New(problem.Unauthorized, "invalid API token; create one with POST /api/v1/auth/token or in the web UI")
	}
	var t store.Token
	err := s.db.WithContext(ctx).Preload("User").Where("hash = ?", hashSecret(secret)).Take(&t).Error
	if store.IsNotFound(err) {
		return store.User{}, problem.New(problem.Unauthorized, "invalid or revoked API token; create a new one with POST /api/v1/auth/token or in the web UI")
	}
	if err != nil {
		return store.User{}, err
	}
	if !t.User.Active {
		return store.User{}, inactive()
	}
	if now := time.Now().UTC(); t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > lastUsedEvery {
		// Best effort: a busy database must not fail the request.
		s.db.WithContext(ctx).Model(&t).Update("last_used_at", now)
	}
	return t.User, nil
}

func tokenToProto(t store.Token) proto.Token {
	return proto.Token{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, LastUsed: t.LastUsedAt}
}
