package account_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/cloud/internal/store/pgtest"
	"homeport.dev/proto"
)

var pg = pgtest.New()

func TestMain(m *testing.M) { pg.Main(m) }

// engines are the databases the invariants must hold on: SQLite runs write
// transactions one at a time anyway; PostgreSQL's READ COMMITTED would let
// two count-then-change transactions both pass without store.Guard.
var engines = pg.Engines()

func open(t *testing.T, dsn string) (*store.DB, *account.Service) {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := account.New(db)
	if err != nil {
		t.Fatal(err)
	}
	return db, s
}

func create(t *testing.T, s *account.Service, name, role string) store.User {
	t.Helper()
	u, err := s.Create(context.Background(), account.NewUser{Username: name, Email: name + "@example.com", Password: "password-" + name, Role: role, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// together runs n calls of fn at the same moment and returns their errors.
func together(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func activeAdmins(t *testing.T, db *store.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Model(&store.User{}).Where("role = ? AND active = ?", proto.RoleAdmin, true).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLastAdminIsKept: the last active admin can be neither demoted,
// deactivated nor deleted; and when two admins are demoted, deactivated or
// deleted at the same moment, one change passes and the other is refused,
// on SQLite and on PostgreSQL.
func TestLastAdminIsKept(t *testing.T) {
	for _, e := range engines {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db, s := open(t, e.DSN(t))
			create(t, s, "root", proto.RoleAdmin)
			release := func(context.Context, store.Home) error { return nil }
			lastAdmin := func(what string, err error) {
				t.Helper()
				if problem.KindOf(err) != problem.Conflict || !strings.Contains(err.Error(), "last active admin") {
					t.Errorf("%s of the last admin: %v, want a conflict naming the last admin", what, err)
				}
			}
			_, err := s.SetRole(ctx, account.CLI, "root", proto.RoleOperator)
			lastAdmin("demotion", err)
			_, err = s.SetActive(ctx, "root", false)
			lastAdmin("deactivation", err)
			lastAdmin("deletion", s.Delete(ctx, account.CLI, "root", release))
			if n := activeAdmins(t, db); n != 1 {
				t.Fatalf("%d active admins after refused changes, want 1", n)
			}

			second := create(t, s, "second", proto.RoleAdmin)
			changes := map[string]func(name string) error{
				"demote": func(name string) error {
					_, err := s.SetRole(ctx, account.CLI, name, proto.RoleUser)
					return err
				},
				"deactivate": func(name string) error {
					_, err := s.SetActive(ctx, name, false)
					return err
				},
				"delete": func(name string) error { return s.Delete(ctx, account.CLI, name, release) },
			}
			for what, change := range changes {
				for round := range 3 { // the race is at the edge: a few tries at it
					errs := together(2, func(i int) error { return change([]string{"root", "second"}[i]) })
					passed := 0
					for _, err := range errs {
						if err == nil {
							passed++
						} else {
							lastAdmin(what, err)
						}
					}
					if n := activeAdmins(t, db); passed != 1 || n != 1 {
						t.Fatalf("%s both admins at once (round %d): %d passed, %d active admins left, want 1 and 1 (%v)", what, round, passed, n, errs)
					}
					// Back to two active admins for the next round.
					for _, name := range []string{"root", "second"} {
						if _, err := s.User(ctx, name); err != nil {
							second = create(t, s, name, proto.RoleAdmin)
						}
						if _, err := s.SetRole(ctx, account.CLI, name, proto.RoleAdmin); err != nil {
							t.Fatal(err)
						}
						if _, err := s.SetActive(ctx, name, true); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			_ = second
		})
	}
}

// TestOnlyAdminsChangeRolesAndDeleteAccounts: the service itself refuses an
// operator's role change, deletion and deactivation of an admin, whatever
// calls it.
func TestOnlyAdminsChangeRolesAndDeleteAccounts(t *testing.T) {
	ctx := context.Background()
	_, s := open(t, filepath.Join(t.TempDir(), "cloud.db"))
	root := create(t, s, "root", proto.RoleAdmin)
	op := account.ActorOf(create(t, s, "op", proto.RoleOperator))
	create(t, s, "alice", proto.RoleUser)
	forbidden := func(what string, err error) {
		t.Helper()
		if problem.KindOf(err) != problem.Forbidden {
			t.Errorf("operator %s: %v, want forbidden", what, err)
		}
	}
	_, err := s.SetRole(ctx, op, "alice", proto.RoleAdmin)
	forbidden("promotes", err)
	_, err = s.SetRole(ctx, op, "op", proto.RoleAdmin)
	forbidden("promotes themself", err)
	forbidden("deletes", s.Delete(ctx, op, "alice", func(context.Context, store.Home) error { return nil }))
	_, err = s.SetActiveBy(ctx, op, "root", false)
	forbidden("deactivates an admin", err)
	_, err = s.CreateInvitation(ctx, op, proto.RoleAdmin, 0)
	forbidden("invites", err)
	_, err = s.CreatePasswordReset(ctx, op, "root")
	forbidden("resets a password", err)
	if u, err := s.SetActiveBy(ctx, op, "alice", false); err != nil || u.Active {
		t.Errorf("operator deactivates a user: %+v, %v", u, err)
	}
	if err := s.Delete(ctx, account.ActorOf(root), "root", nil); problem.KindOf(err) != problem.Conflict {
		t.Errorf("an admin deletes themself: %v, want a conflict", err)
	}
	if _, err := s.SetRole(ctx, account.CLI, "alice", "superuser"); problem.KindOf(err) != problem.Invalid {
		t.Errorf("unknown role: %v", err)
	}
}

// TestInvitationIsSingleUseAndExpires: an invitation gives one account, with
// its role, active at once; a second accept, two accepts at once, an expired
// or revoked link are refused and create nothing.
func TestInvitationIsSingleUseAndExpires(t *testing.T) {
	for _, e := range engines {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db, s := open(t, e.DSN(t))
			root := account.ActorOf(create(t, s, "root", proto.RoleAdmin))
			users := func() int64 {
				var n int64
				db.Model(&store.User{}).Count(&n)
				return n
			}
			inv, err := s.CreateInvitation(ctx, root, proto.RoleOperator, 0)
			if err != nil {
				t.Fatal(err)
			}
			var stored store.Invitation
			db.First(&stored, inv.ID)
			if !strings.HasPrefix(inv.Token, "hpi_") || stored.Hash == inv.Token || strings.Contains(stored.Hash, inv.Token) {
				t.Fatalf("invitation %q stored as %q", inv.Token, stored.Hash)
			}
			// Bad input does not use the link up.
			if _, err := s.AcceptInvitation(ctx, inv.Token, account.NewUser{Username: "Bad Name", Email: "a@example.com", Password: "a long passphrase"}); problem.KindOf(err) != problem.Invalid {
				t.Fatalf("bad username: %v", err)
			}
			u, err := s.AcceptInvitation(ctx, inv.Token, account.NewUser{Username: "olga", Email: "olga@example.com", Password: "a long passphrase", Role: proto.RoleAdmin, Admin: true})
			if err != nil || u.Role != proto.RoleOperator || !u.Active {
				t.Fatalf("accept = %+v, %v; want an active operator (the invitation's role, not the request's)", u, err)
			}
			if _, err := s.Authenticate(ctx, "olga", "a long passphrase"); err != nil {
				t.Errorf("the invitee cannot log in: %v", err)
			}
			before := users()
			_, err = s.AcceptInvitation(ctx, inv.Token, account.NewUser{Username: "olga2", Email: "o@example.com", Password: "a long passphrase"})
			if problem.KindOf(err) != problem.Conflict || !strings.Contains(err.Error(), "already used") {
				t.Errorf("second accept: %v, want already used", err)
			}

			// Two accepts of one link at once: one account.
			inv, _ = s.CreateInvitation(ctx, root, proto.RoleUser, 0)
			errs := together(8, func(i int) error {
				_, err := s.AcceptInvitation(ctx, inv.Token, account.NewUser{Username: fmt.Sprintf("racer%d", i), Email: "r@example.com", Password: "a long passphrase"})
				return err
			})
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else if problem.KindOf(err) != problem.Conflict {
					t.Errorf("concurrent accept: %v", err)
				}
			}
			if ok != 1 || users() != before+1 {
				t.Errorf("8 accepts at once: %d passed, %d new accounts; want 1 and 1", ok, users()-before)
			}

			// Expired and revoked links.
			inv, _ = s.CreateInvitation(ctx, root, proto.RoleUser, 0)
			db.Model(&store.Invitation{}).Where("id = ?", inv.ID).Update("expires_at", time.Now().Add(-time.Minute))
			_, err = s.AcceptInvitation(ctx, inv.Token, account.NewUser{Username: "late", Email: "l@example.com", Password: "a long passphrase"})
			if problem.KindOf(err) != problem.Conflict || !strings.Contains(err.Error(), "expired") {
				t.Errorf("expired invitation: %v", err)
			}
			inv, _ = s.CreateInvitation(ctx, root, proto.RoleUser, 0)
			if err := s.RevokeInvitation(ctx, root, inv.ID); err != nil {
				t.Fatal(err)
			}
			_, err = s.AcceptInvitation(ctx, inv.Token, account.NewUser{Username: "late", Email: "l@example.com", Password: "a long passphrase"})
			if problem.KindOf(err) != problem.NotFound {
				t.Errorf("revoked invitation: %v", err)
			}
			if _, err := s.User(ctx, "late"); err == nil {
				t.Error("a refused invitation created an account")
			}
			if _, err := s.CreateInvitation(ctx, root, proto.RoleUser, 31*24*time.Hour); problem.KindOf(err) != problem.Invalid {
				t.Errorf("a 31-day invitation: %v", err)
			}
		})
	}
}

// TestPasswordResetIsSingleUseAndEndsSessions: a reset link sets the
// password once, ends every web session of the account, and stops working;
// a newer link replaces an older one; an expired link and a too-short
// password are refused (the latter keeps the link usable).
func TestPasswordResetIsSingleUseAndEndsSessions(t *testing.T) {
	ctx := context.Background()
	db, s := open(t, filepath.Join(t.TempDir(), "cloud.db"))
	root := account.ActorOf(create(t, s, "root", proto.RoleAdmin))
	alice := create(t, s, "alice", proto.RoleUser)
	var sessions []string
	for range 2 {
		sess, err := s.CreateSession(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, sess)
	}
	old, _ := s.CreatePasswordReset(ctx, root, "alice")
	r, err := s.CreatePasswordReset(ctx, root, "alice")
	if err != nil || !strings.HasPrefix(r.Token, "hpr_") {
		t.Fatalf("reset = %+v, %v", r, err)
	}
	if _, err := s.ResetPassword(ctx, old.Token, "a new long passphrase"); problem.KindOf(err) != problem.NotFound {
		t.Errorf("the older link: %v, want not valid", err)
	}
	if _, err := s.ResetPassword(ctx, r.Token, "short"); problem.KindOf(err) != problem.Invalid {
		t.Errorf("short password: %v", err)
	}
	if _, err := s.ResetPassword(ctx, r.Token, "a new long passphrase"); err != nil {
		t.Fatalf("reset: %v", err)
	}
	for _, sess := range sessions {
		if _, err := s.UserBySession(ctx, sess); problem.KindOf(err) != problem.Unauthorized {
			t.Errorf("a session survived the reset: %v", err)
		}
	}
	if _, err := s.Authenticate(ctx, "alice", "password-alice"); err == nil {
		t.Error("the old password still works")
	}
	if _, err := s.Authenticate(ctx, "alice", "a new long passphrase"); err != nil {
		t.Errorf("the new password: %v", err)
	}
	if _, err := s.ResetPassword(ctx, r.Token, "another long passphrase"); problem.KindOf(err) != problem.NotFound {
		t.Errorf("second use: %v, want not valid", err)
	}
	r, _ = s.CreatePasswordReset(ctx, root, "alice")
	db.Model(&store.PasswordReset{}).Where("user_id = ?", alice.ID).Update("expires_at", time.Now().Add(-time.Minute))
	if _, err := s.ResetPassword(ctx, r.Token, "another long passphrase"); problem.KindOf(err) != problem.Conflict {
		t.Errorf("expired link: %v", err)
	}
	if _, err := s.Authenticate(ctx, "alice", "a new long passphrase"); err != nil {
		t.Errorf("a refused reset changed the password: %v", err)
	}
}

// TestDeleteReleasesHomesAndRemembersTheAccount: deletion releases each home
// through the given release path, removes tokens, sessions and reset links,
// and leaves a DeletedUser whose ID a running cloud sees among the owners
// to take offline.
func TestDeleteReleasesHomesAndRemembersTheAccount(t *testing.T) {
	ctx := context.Background()
	db, s := open(t, filepath.Join(t.TempDir(), "cloud.db"))
	root := account.ActorOf(create(t, s, "root", proto.RoleAdmin))
	bob := create(t, s, "bob", proto.RoleUser)
	for i := range 2 {
		h := store.Home{Slot: i, Slug: fmt.Sprintf("bobhome%d", i), UserID: bob.ID, PublicKey: "k", KeyFingerprint: fmt.Sprint(i)}
		if err := db.Create(&h).Error; err != nil {
			t.Fatal(err)
		}
	}
	s.CreateToken(ctx, bob, "t")
	sess, _ := s.CreateSession(ctx, bob)
	s.CreatePasswordReset(ctx, root, "bob")

	var released []string
	failing := errors.New("release failed")
	err := s.Delete(ctx, root, "bob", func(_ context.Context, h store.Home) error { return failing })
	if !errors.Is(err, failing) {
		t.Fatalf("delete with a failing release: %v", err)
	}
	if u, err := s.User(ctx, "bob"); err != nil || u.Active {
		t.Fatalf("after a failed delete bob is %+v, %v; want kept, inactive", u, err)
	}
	err = s.Delete(ctx, root, "bob", func(_ context.Context, h store.Home) error {
		released = append(released, h.Slug)
		return db.Delete(&store.Home{}, h.ID).Error
	})
	if err != nil || len(released) != 2 {
		t.Fatalf("delete: %v, released %v", err, released)
	}
	if _, err := s.User(ctx, "bob"); problem.KindOf(err) != problem.NotFound {
		t.Errorf("bob still exists: %v", err)
	}
	if _, err := s.UserBySession(ctx, sess); err == nil {
		t.Error("bob's session survived")
	}
	for _, m := range []any{&store.Token{}, &store.Session{}, &store.PasswordReset{}} {
		var n int64
		db.Model(m).Where("user_id = ?", bob.ID).Count(&n)
		if n != 0 {
			t.Errorf("%d %T rows of bob remain", n, m)
		}
	}
	var d store.DeletedUser
	if err := db.First(&d, bob.ID).Error; err != nil || d.Username != "bob" || d.DeletedBy != "root" {
		t.Errorf("deleted user record %+v, %v", d, err)
	}
	if ids, _ := s.InactiveOwners(ctx); len(ids) != 1 || ids[0] != bob.ID {
		t.Errorf("owners to take offline = %v, want bob's ID %d", ids, bob.ID)
	}
	// The name is free again.
	create(t, s, "bob", proto.RoleUser)
}
