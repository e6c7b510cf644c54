package account

import (
	"context"
	"time"

	"gorm.io/gorm"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// Actor is who asks for a change: a logged-in user (by the role they hold
// now) or the `cloud users` CLI, which acts with the admin's capabilities.
type Actor struct {
	Name string
	Role string
}

// CLI is the actor of `cloud users`: whoever can run it owns the database.
var CLI = Actor{Name: "(cli)", Role: proto.RoleAdmin} // no username has parentheses

// ActorOf returns the actor for a logged-in user.
func ActorOf(u store.User) Actor { return Actor{Name: u.Username, Role: u.Role} }

func takeUser(tx *gorm.DB, username string) (store.User, error) {
	var u store.User
	err := tx.Where("username = ?", username).Take(&u).Error
	if store.IsNotFound(err) {
		return u, problem.New(problem.NotFound, "no user named %s", proto.Printable(username))
	}
	return u, err
}

// changeUser runs change on username's account in one transaction that
// holds store.GuardAdmins (see keepAnAdmin), and returns the account as
// change left it.
func (s *Service) changeUser(ctx context.Context, username string, change func(tx *gorm.DB, u *store.User) error) (store.User, error) {
	var u store.User
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := store.Guard(tx, store.GuardAdmins); err != nil {
			return err
		}
		var err error
		if u, err = takeUser(tx, username); err != nil {
			return err
		}
		return change(tx, &u)
	})
	return u, err
}

// keepAnAdmin refuses a change that would take u's admin powers away
// (demotion, deactivation, deletion) when u is the last active admin. The
// caller holds store.GuardAdmins, so two such changes at once are counted
// one after the other and cannot both pass.
func keepAnAdmin(tx *gorm.DB, u store.User, what string) error {
	if u.Role != proto.RoleAdmin || !u.Active {
		return nil
	}
	var others int64
	if err := tx.Model(&store.User{}).Where("role = ? AND active = ? AND id <> ?", proto.RoleAdmin, true, u.ID).Count(&others).Error; err != nil {
		return err
	}
	if others == 0 {
		return problem.New(problem.Conflict, "%s is the last active admin; make another user admin before you %s them", u.Username, what)
	}
	return nil
}

// SetActive approves (true) or deactivates (false) a user, as the CLI.
func (s *Service) SetActive(ctx context.Context, username string, active bool) (store.User, error) {
	return s.SetActiveBy(ctx, CLI, username, active)
}

// SetActiveBy approves (true) or deactivates (false) a user for actor.
// Deactivating also ends the user's web sessions; their tokens stop working
// at once because every request checks the user's state. Deactivating an
// admin needs ManageRoles, and never the last active admin.
func (s *Service) SetActiveBy(ctx context.Context, actor Actor, username string, active bool) (store.User, error) {
	if err := Need(actor.Role, ApproveUsers); err != nil {
		return store.User{}, err
	}
	return s.changeUser(ctx, username, func(tx *gorm.DB, u *store.User) error {
		if !active && u.Role == proto.RoleAdmin {
			if err := Need(actor.Role, ManageRoles); err != nil {
				return problem.New(problem.Forbidden, "%s is an admin; only an admin may deactivate an admin", u.Username)
			}
			if err := keepAnAdmin(tx, *u, "deactivate"); err != nil {
				return err
			}
		}
		before := u.Active
		u.Active = active
		if err := tx.Model(u).Update("active", active).Error; err != nil {
			return err
		}
		if !active {
			if err := tx.Where("user_id = ?", u.ID).Delete(&store.Session{}).Error; err != nil {
				return err
			}
		}
		kind := map[bool]string{true: "user.approve", false: "user.deactivate"}[active]
		return audit.Record(tx, audit.Entry{Kind: kind, Target: u.Username, OwnerID: u.ID,
			Before: map[string]any{"active": before}, After: map[string]any{"active": active}})
	})
}

// SetRole gives username the role. Taking the admin role from the last
// active admin is refused.
func (s *Service) SetRole(ctx context.Context, actor Actor, username, role string) (store.User, error) {
	if err := Need(actor.Role, ManageRoles); err != nil {
		return store.User{}, err
	}
	if err := ValidateRole(role); err != nil {
		return store.User{}, err
	}
	return s.changeUser(ctx, username, func(tx *gorm.DB, u *store.User) error {
		if role != proto.RoleAdmin {
			if err := keepAnAdmin(tx, *u, "change the role of"); err != nil {
				return err
			}
		}
		before := u.Role
		u.Role = role
		if err := tx.Model(u).Update("role", role).Error; err != nil {
			return err
		}
		return audit.Record(tx, audit.Entry{Kind: "user.role", Target: u.Username, OwnerID: u.ID,
			Before: map[string]any{"role": before}, After: map[string]any{"role": role}})
	})
}

// Delete deletes username's account: first it is deactivated (sessions,
// tokens and password-reset links go, so nothing of theirs works any more),
// then each of their homes is released with release (the homes service's
// own release path, which cleans HAProxy, tc and SSH up), then the account
// row goes and a DeletedUser row records it. The last active admin cannot
// be deleted. A failure half-way leaves the account deactivated; deleting
// again finishes the job.
func (s *Service) Delete(ctx context.Context, actor Actor, username string, release func(context.Context, store.Home) error) error {
	if err := Need(actor.Role, ManageUsers); err != nil {
		return err
	}
	u, err := s.changeUser(ctx, username, func(tx *gorm.DB, u *store.User) error {
		if u.Username == actor.Name {
			return problem.New(problem.Conflict, "you cannot delete your own account; ask another admin")
		}
		if err := keepAnAdmin(tx, *u, "delete"); err != nil {
			return err
		}
		if err := tx.Model(u).Update("active", false).Error; err != nil {
			return err
		}
		for _, m := range []any{&store.Session{}, &store.Token{}, &store.PasswordReset{}} {
			if err := tx.Where("user_id = ?", u.ID).Delete(m).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var hs []store.Home
	if err := s.db.WithContext(ctx).Where("user_id = ?", u.ID).Order("id").Find(&hs).Error; err != nil {
		return err
	}
	for _, h := range hs {
		if err := release(ctx, h); err != nil && problem.KindOf(err) != problem.NotFound {
			return err
		}
	}
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&store.DeletedUser{ID: u.ID, Username: u.Username, DeletedBy: actor.Name, DeletedAt: time.Now().UTC()}).Error; err != nil {
			return err
		}
		// A home claimed in between is impossible (the account is inactive);
		// the foreign key refuses the delete anyway if one were there.
		res := tx.Delete(&store.User{}, u.ID)
		if res.Error == nil && res.RowsAffected == 0 {
			return problem.New(problem.NotFound, "no user named %s", proto.Printable(username))
		}
		if res.Error != nil {
			return res.Error
		}
		return audit.Record(tx, audit.Entry{Kind: "user.delete", Target: u.Username, OwnerID: u.ID, Before: userFacts(u)})
	})
}
