package account

import (
	"context"
	"time"

	"gorm.io/gorm"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
)

// SessionTTL is how long a web login lasts.
const SessionTTL = 7 * 24 * time.Hour

// CreateSession starts a web session for u and returns its secret (the
// cookie value).
func (s *Service) CreateSession(ctx context.Context, u store.User) (string, error) {
	secret, hash, err := newSecret("hs_")
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	db := s.db.WithContext(ctx)
	// Expired sessions are swept here rather than by a timer: logins are rare.
	if err := db.Where("expires_at < ?", now).Delete(&store.Session{}).Error; err != nil {
		return "", err
	}
	sess := store.Session{UserID: u.ID, Hash: hash, ExpiresAt: now.Add(SessionTTL)}
	return secret, s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&sess).Error; err != nil {
			return err
		}
		return audit.Record(tx, audit.Entry{Kind: "session.login", Target: u.Username, OwnerID: u.ID, Who: u.Username})
	})
}

// UserBySession resolves a session cookie to an active user.
func (s *Service) UserBySession(ctx context.Context, secret string) (store.User, error) {
	var sess store.Session
	err := s.db.WithContext(ctx).Preload("User").
		Where("hash = ? AND expires_at > ?", hashSecret(secret), time.Now().UTC()).Take(&sess).Error
	if store.IsNotFound(err) {
		return store.User{}, problem.New(problem.Unauthorized, "your session has expired; log in again")
	}
	if err != nil {
		return store.User{}, err
	}
	if !sess.User.Active {
		return store.User{}, inactive()
	}
	return sess.User, nil
}

// DeleteSession logs a session out.
func (s *Service) DeleteSession(ctx context.Context, secret string) error {
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		var sess store.Session
		err := tx.Preload("User").Where("hash = ?", hashSecret(secret)).Take(&sess).Error
		if store.IsNotFound(err) {
			return nil // logged out already
		}
		if err != nil {
			return err
		}
		if err := tx.Delete(&sess).Error; err != nil {
			return err
		}
		return audit.Record(tx, audit.Entry{Kind: "session.logout", Target: sess.User.Username, OwnerID: sess.UserID, Who: sess.User.Username})
	})
}
