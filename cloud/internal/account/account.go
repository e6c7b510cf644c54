// Package account owns users, passwords, API tokens and web sessions.
// Identity always comes from a credential checked here, never from a field a
// client sends.
package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// TokenPrefix marks homeport API tokens so they are recognisable in configs
// and by secret scanners.
const TokenPrefix = "hp_"

// lastUsedEvery limits how often a token's last-used time is written, so
// authenticated reads do not turn into database writes.
const lastUsedEvery = time.Minute

// Service manages accounts.
type Service struct {
	db    *store.DB
	dummy string // hash compared against for unknown users (constant-time login)
}

// New returns an account service over db.
func New(db *store.DB) (*Service, error) {
	dummy, err := hashPassword("not-a-real-password")
	if err != nil {
		return nil, err
	}
	return &Service{db: db, dummy: dummy}, nil
}

// NewUser describes an account to create.
type NewUser struct {
	Username string
	Email    string
	Password string
	Admin    bool
	// Role, when set, is the account's role (Admin is then ignored).
	Role   string
	Active bool
}

// Create validates and stores a user. Self-signup uses Active=false.
func (s *Service) Create(ctx context.Context, n NewUser) (store.User, error) {
	u, err := n.row()
	if err != nil {
		return u, err
	}
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := insertUser(tx, &u); err != nil {
			return err
		}
		kind := "user.create"
		if audit.From(ctx).Name == "" {
			kind = "user.signup" // anonymous: the account signs itself up
		}
		return audit.Record(tx, audit.Entry{Kind: kind, Target: u.Username, OwnerID: u.ID, Who: u.Username, After: userFacts(u)})
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

// userFacts is what the audit log shows of an account: never its hash.
func userFacts(u store.User) map[string]any {
	return map[string]any{"username": u.Username, "email": u.Email, "role": u.Role, "active": u.Active}
}

// row validates n and returns the user row to insert.
func (n NewUser) row() (store.User, error) {
	n.Username = strings.TrimSpace(n.Username)
	n.Email = strings.TrimSpace(n.Email)
	if err := proto.ValidateUsername(n.Username); err != nil {
		return store.User{}, problem.InvalidField("username", err)
	}
	if err := proto.ValidateEmail(n.Email); err != nil {
		return store.User{}, problem.InvalidField("email", err)
	}
	if err := validatePassword(n.Password); err != nil {
		return store.User{}, problem.InvalidField("password", err)
	}
	role := proto.RoleUser
	if n.Admin {
		role = proto.RoleAdmin
	}
	if n.Role != "" {
		if err := ValidateRole(n.Role); err != nil {
			return store.User{}, err
		}
		role = n.Role
	}
	hash, err := hashPassword(n.Password)
	if err != nil {
		return store.User{}, err
	}
	return store.User{Username: n.Username, Email: n.Email, PasswordHash: hash, Role: role, Active: n.Active}, nil
}

func insertUser(tx *gorm.DB, u *store.User) error {
	if err := tx.Create(u).Error; err != nil {
		if store.IsDuplicate(err) {
			return &problem.Error{Kind: problem.Conflict, Field: "username", Message: fmt.Sprintf("username %q is taken; choose another", u.Username)}
		}
		return err
	}
	return nil
}

// Authenticate checks a username and password. Unknown users and wrong
// passwords give the same error after the same work; an inactive account is
// reported as such only once the password is right.
func (s *Service) Authenticate(ctx context.Context, username, password string) (store.User, error) {
	var u store.User
	err := s.db.WithContext(ctx).Where("username = ?", username).Take(&u).Error
	if err != nil && !store.IsNotFound(err) {
		return store.User{}, err
	}
	hash := u.PasswordHash
	if hash == "" {
		hash = s.dummy
	}
	if ok := checkPassword(hash, password); !ok || u.ID == 0 {
		return store.User{}, problem.New(problem.Unauthorized, "wrong username or password")
	}
	if !u.Active {
		return store.User{}, inactive()
	}
	return u, nil
}

func inactive() error {
	return problem.New(problem.Inactive, "this account is waiting for an admin to approve it (or was deactivated); ask your cloud's admin")
}

// User returns the user with the given name.
func (s *Service) User(ctx context.Context, username string) (store.User, error) {
	var u store.User
	err := s.db.WithContext(ctx).Where("username = ?", username).Take(&u).Error
	if store.IsNotFound(err) {
		return u, problem.New(problem.NotFound, "no user named %s", proto.Printable(username))
	}
	return u, err
}

// List returns all users ordered by name.
func (s *Service) List(ctx context.Context) ([]store.User, error) {
	var users []store.User
	err := s.db.WithContext(ctx).Order("username").Find(&users).Error
	return users, err
}

// newSecret returns a random secret with prefix and its storage hash.
func newSecret(prefix string) (secret, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	secret = prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	return secret, hashSecret(secret), nil
}

// hashSecret is SHA-256: tokens carry 256 random bits, so a slow hash adds
// nothing and a fast one keeps every authenticated request cheap.
func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// ToProto converts a user for the API.
func ToProto(u store.User) proto.User {
	return proto.User{Username: u.Username, Email: u.Email, Role: u.Role, Active: u.Active, CreatedAt: u.CreatedAt}
}
