package console

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// Session lifetimes: a login ends after SessionIdle without a request, and
// after SessionMax in any case.
const (
	SessionIdle = time.Hour
	SessionMax  = 12 * time.Hour
	maxSessions = 64 // beyond, the oldest login is dropped
)

// sessions are the console's logged-in browsers, kept in memory (the
// console is one process; a restart logs everyone out). Each login gets 32
// random bytes; only their SHA-256 is kept, and a cookie is looked up by its
// hash, so the lookup's timing tells nothing about a stored secret.
type sessions struct {
	now  func() time.Time
	mu   sync.Mutex
	live map[[sha256.Size]byte]session
}

type session struct{ created, seen time.Time }

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, live: map[[sha256.Size]byte]session{}}
}

// create starts a session and returns its secret (the cookie value).
func (s *sessions) create() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var oldest [sha256.Size]byte
	for k, v := range s.live {
		if s.expired(v, now) {
			delete(s.live, k)
		} else if o, ok := s.live[oldest]; !ok || v.created.Before(o.created) {
			oldest = k
		}
	}
	if len(s.live) >= maxSessions {
		delete(s.live, oldest)
	}
	s.live[sha256.Sum256([]byte(id))] = session{created: now, seen: now}
	return id, nil
}

// use reports whether id is a live session and, if so, counts this as
// activity (touch) or only looks (a live event stream checking on itself).
func (s *sessions) use(id string, touch bool) bool {
	if id == "" {
		return false
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.live[k]
	if !ok {
		return false
	}
	now := s.now()
	if s.expired(v, now) {
		delete(s.live, k)
		return false
	}
	if touch {
		v.seen = now
		s.live[k] = v
	}
	return true
}

// revoke ends a session (logout).
func (s *sessions) revoke(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, sha256.Sum256([]byte(id)))
}

func (s *sessions) expired(v session, now time.Time) bool {
	return now.Sub(v.seen) >= SessionIdle || now.Sub(v.created) >= SessionMax
}
