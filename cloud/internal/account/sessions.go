package account

import (
	"context"
	"time"

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
	return secret, db.Create(&sess).Error
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
	return s.db.WithContext(ctx).Where("hash = ?", hashSecret(secret)).Delete(&store.Session{}).Error
}
