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

// Invitation and reset link prefixes: recognisable, and never an API token.
const (
	invitePrefix = "hpi_"
	resetPrefix  = "hpr_"
)

// Link lifetimes.
const (
	DefaultInvitationTTL = 72 * time.Hour
	MaxInvitationTTL     = 30 * 24 * time.Hour
	ResetTTL             = 24 * time.Hour
)

// InvitePath and ResetPath are the web UI's pages for a link's secret.
const (
	InvitePath = "/invite/"
	ResetPath  = "/reset/"
)

// SignupActive tells how a self-signup is handled under --signup mode:
// whether the account is active at once, or why no account may be made.
func SignupActive(mode string) (bool, error) {
	switch mode {
	case proto.SignupOpen:
		return true, nil
	case proto.SignupApproval, "":
		return false, nil
	case proto.SignupInvite:
		return false, problem.New(problem.Forbidden, "this cloud takes new accounts by invitation only; ask an admin for an invitation link")
	}
	return false, problem.New(problem.Forbidden, "signup is closed on this cloud; ask its admin for an account")
}

// CreateInvitation makes a single-use link to an account with role, valid
// for ttl (0: DefaultInvitationTTL). The secret is in the result only.
func (s *Service) CreateInvitation(ctx context.Context, actor Actor, role string, ttl time.Duration) (proto.Invitation, error) {
	if err := Need(actor.Role, ManageUsers); err != nil {
		return proto.Invitation{}, err
	}
	if err := ValidateRole(role); err != nil {
		return proto.Invitation{}, err
	}
	if ttl == 0 {
		ttl = DefaultInvitationTTL
	}
	if ttl < time.Hour || ttl > MaxInvitationTTL {
		return proto.Invitation{}, problem.InvalidField("valid_hours", fmt.Errorf("an invitation is valid from 1 hour to %d hours", int(MaxInvitationTTL.Hours())))
	}
	secret, hash, err := newSecret(invitePrefix)
	if err != nil {
		return proto.Invitation{}, err
	}
	inv := store.Invitation{Hash: hash, Role: role, CreatedBy: actor.Name, ExpiresAt: time.Now().UTC().Add(ttl)}
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&inv).Error; err != nil {
			return err
		}
		return audit.Record(tx, audit.Entry{Kind: "invitation.create", Target: fmt.Sprintf("invitation %d", inv.ID),
			After: map[string]any{"id": inv.ID, "role": inv.Role, "expires_at": inv.ExpiresAt}})
	})
	if err != nil {
		return proto.Invitation{}, err
	}
	out := invitationToProto(inv)
	out.Token = secret
	return out, nil
}

// Invitations lists invitations, newest first, without their secrets.
func (s *Service) Invitations(ctx context.Context) ([]proto.Invitation, error) {
	var invs []store.Invitation
	if err := s.db.WithContext(ctx).Order("id DESC").Find(&invs).Error; err != nil {
		return nil, err
	}
	out := make([]proto.Invitation, 0, len(invs))
	for _, inv := range invs {
		out = append(out, invitationToProto(inv))
	}
	return out, nil
}

// RevokeInvitation deletes an invitation; its link stops working.
func (s *Service) RevokeInvitation(ctx context.Context, actor Actor, id uint64) error {
	if err := Need(actor.Role, ManageUsers); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		var inv store.Invitation
		if err := tx.Take(&inv, id).Error; err != nil {
			if store.IsNotFound(err) {
				return problem.New(problem.NotFound, "no invitation with id %d", id)
			}
			return err
		}
		if err := tx.Delete(&inv).Error; err != nil {
			return err
		}
		return audit.Record(tx, audit.Entry{Kind: "invitation.revoke", Target: fmt.Sprintf("invitation %d", inv.ID),
			Before: map[string]any{"id": inv.ID, "role": inv.Role, "used_by": inv.UsedBy}})
	})
}

// Invitation returns the invitation a link's secret opens, or why it
// cannot be used (unknown or revoked, used, expired).
func (s *Service) Invitation(ctx context.Context, secret string) (store.Invitation, error) {
	return takeInvitation(s.db.WithContext(ctx), secret)
}

func takeInvitation(tx *gorm.DB, secret string) (store.Invitation, error) {
	var inv store.Invitation
	err := errBadLink("invitation")
	if strings.HasPrefix(secret, invitePrefix) && len(secret) <= 128 {
		err = tx.Where("hash = ?", hashSecret(secret)).Take(&inv).Error
	}
	switch {
	case store.IsNotFound(err):
		return inv, errBadLink("invitation")
	case err != nil:
		return inv, err
	case inv.UsedAt != nil:
		return inv, problem.New(problem.Conflict, "this invitation was already used (by %s); ask an admin for a new one", inv.UsedBy)
	case !time.Now().Before(inv.ExpiresAt):
		return inv, problem.New(problem.Conflict, "this invitation expired on %s; ask an admin for a new one", inv.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	return inv, nil
}

func errBadLink(what string) error {
	return problem.New(problem.NotFound, "this %s link is not valid: it was mistyped, revoked or replaced; ask an admin for a new one", what)
}

// AcceptInvitation creates the invitee's account with the invitation's
// role, active at once, and uses the invitation up, in one transaction: two
// accepts of one link give one account.
func (s *Service) AcceptInvitation(ctx context.Context, secret string, n NewUser) (store.User, error) {
	n.Role, n.Admin, n.Active = proto.RoleUser, false, true
	var u store.User
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		inv, err := takeInvitation(tx, secret)
		if err != nil {
			return err
		}
		n.Role = inv.Role
		if u, err = n.row(); err != nil {
			return err
		}
		res := tx.Model(&store.Invitation{}).Where("id = ? AND used_at IS NULL", inv.ID).
			Updates(map[string]any{"used_by": u.Username, "used_at": time.Now().UTC()})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return problem.New(problem.Conflict, "this invitation was already used; ask an admin for a new one")
		}
		if err := insertUser(tx, &u); err != nil {
			return err
		}
		return audit.Record(tx, audit.Entry{Kind: "invitation.accept", Target: u.Username, OwnerID: u.ID, Who: u.Username,
			After: map[string]any{"invitation": inv.ID, "user": userFacts(u)}})
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

func invitationToProto(inv store.Invitation) proto.Invitation {
	return proto.Invitation{ID: inv.ID, Role: inv.Role, CreatedBy: inv.CreatedBy, CreatedAt: inv.CreatedAt,
		ExpiresAt: inv.ExpiresAt, UsedBy: inv.UsedBy, UsedAt: inv.UsedAt}
}

// CreatePasswordReset makes a one-time link that sets username's password,
// valid for ResetTTL; an earlier link of theirs stops working. The secret is
// in the result only.
func (s *Service) CreatePasswordReset(ctx context.Context, actor Actor, username string) (proto.PasswordReset, error) {
	if err := Need(actor.Role, ManageUsers); err != nil {
		return proto.PasswordReset{}, err
	}
	secret, hash, err := newSecret(resetPrefix)
	if err != nil {
		return proto.PasswordReset{}, err
	}
	r := store.PasswordReset{Hash: hash, ExpiresAt: time.Now().UTC().Add(ResetTTL)}
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		u, err := takeUser(tx, username)
		if err != nil {
			return err
		}
		r.UserID = u.ID
		if err := tx.Where("user_id = ?", u.ID).Delete(&store.PasswordReset{}).Error; err != nil {
			return err
		}
		if err := tx.Create(&r).Error; err != nil {
			return err
		}
		return audit.Record(tx, audit.Entry{Kind: "user.reset_link", Target: u.Username, OwnerID: u.ID,
			After: map[string]any{"expires_at": r.ExpiresAt}})
	})
	if err != nil {
		return proto.PasswordReset{}, err
	}
	return proto.PasswordReset{Username: username, ExpiresAt: r.ExpiresAt, Token: secret}, nil
}

// PasswordResetUser returns the user a reset link's secret is for, or why
// it cannot be used.
func (s *Service) PasswordResetUser(ctx context.Context, secret string) (store.User, error) {
	r, err := takeReset(s.db.WithContext(ctx), secret)
	return r.User, err
}

func takeReset(tx *gorm.DB, secret string) (store.PasswordReset, error) {
	var r store.PasswordReset
	err := errBadLink("password reset")
	if strings.HasPrefix(secret, resetPrefix) && len(secret) <= 128 {
		err = tx.Preload("User").Where("hash = ?", hashSecret(secret)).Take(&r).Error
	}
	switch {
	case store.IsNotFound(err):
		return r, errBadLink("password reset")
	case err != nil:
		return r, err
	case !time.Now().Before(r.ExpiresAt):
		return r, problem.New(problem.Conflict, "this password reset link expired on %s; ask an admin for a new one", r.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	return r, nil
}

// ResetPassword sets the password of the reset link's user, uses the link
// up and ends every web session of theirs (a stolen session dies with the
// old password), in one transaction. API tokens are kept: the user revokes
// them in the web UI if they leaked too.
func (s *Service) ResetPassword(ctx context.Context, secret, password string) (store.User, error) {
	if err := validatePassword(password); err != nil {
		return store.User{}, problem.InvalidField("password", err)
	}
	hash, err := hashPassword(password)
	if err != nil {
		return store.User{}, err
	}
	var u store.User
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		r, err := takeReset(tx, secret)
		if err != nil {
			return err
		}
		u = r.User
		res := tx.Delete(&store.PasswordReset{}, r.ID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errBadLink("password reset")
		}
		if err := tx.Model(&u).Update("password_hash", hash).Error; err != nil {
			return err
		}
		if err := tx.Where("user_id = ?", u.ID).Delete(&store.Session{}).Error; err != nil {
			return err
		}
		return audit.Record(tx, audit.Entry{Kind: "user.password_reset", Target: u.Username, OwnerID: u.ID, Who: u.Username})
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}
