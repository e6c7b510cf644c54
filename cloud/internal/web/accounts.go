package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/proto"
)

// Account lifecycle pages: roles, password resets, deletion, invitations,
// and the pages a link opens (accept an invitation, set a new password).
// Each handler calls one account.Service method, where the change happens.

func actor(c echo.Context) account.Actor { return account.ActorOf(currentUser(c)) }

// linkBase is the base of the links shown to admins: the cloud's public
// URL, or the one this browser used.
func (w *ui) linkBase(c echo.Context) string {
	if w.CloudURL != "" {
		return w.CloudURL
	}
	return c.Scheme() + "://" + c.Request().Host
}

// linkView is a link shown once (an invitation or a password reset).
type linkView struct {
	What    string // "Invitation", "Password reset"
	For     string // the role offered, or the user
	URL     string
	Expires time.Time
	Back    string
}

func (w *ui) showLink(c echo.Context, v linkView) error {
	return w.render(c, http.StatusCreated, "link", page{Title: v.What + " link", Data: v})
}

func (w *ui) usersRefused(c echo.Context, err error) error {
	return w.refused(c, "users", err, func(fe *formError) error { return w.showUsers(c, fe.Status, fe) })
}

func (w *ui) setRole(c echo.Context) error {
	if _, err := w.Accounts.SetRole(ctx(c), actor(c), c.Param("username"), c.FormValue("role")); err != nil {
		return w.usersRefused(c, err)
	}
	return done(c, "/admin/users", "role")
}

func (w *ui) passwordReset(c echo.Context) error {
	r, err := w.Accounts.CreatePasswordReset(ctx(c), actor(c), c.Param("username"))
	if err != nil {
		return w.usersRefused(c, err)
	}
	return w.showLink(c, linkView{What: "Password reset", For: r.Username, URL: w.linkBase(c) + account.ResetPath + r.Token, Expires: r.ExpiresAt, Back: "/admin/users"})
}

func (w *ui) deleteUser(c echo.Context) error {
	if err := w.Accounts.Delete(ctx(c), actor(c), c.Param("username"), w.Homes.Release); err != nil {
		return w.usersRefused(c, err)
	}
	return done(c, "/admin/users", "user-deleted")
}

// invitationsView is the invitations page.
type invitationsView struct {
	Invitations []proto.Invitation
	Roles       []string
	Now         time.Time
}

func (w *ui) adminInvitations(c echo.Context) error { return w.showInvitations(c, http.StatusOK, nil) }

func (w *ui) showInvitations(c echo.Context, status int, fe *formError) error {
	invs, err := w.Accounts.Invitations(ctx(c))
	if err != nil {
		return err
	}
	return w.render(c, status, "admin_invitations", page{Title: "Invitations", Err: fe,
		Data: invitationsView{Invitations: invs, Roles: proto.Roles, Now: time.Now()}})
}

func (w *ui) createInvitation(c echo.Context) error {
	show := func(fe *formError) error { return w.showInvitations(c, fe.Status, fe) }
	hours, err := strconv.Atoi(strings.TrimSpace(c.FormValue("valid_hours")))
	if err != nil {
		return w.refused(c, "invite", problem.New(problem.Invalid, "give the link's validity in whole hours"), show)
	}
	inv, err := w.Accounts.CreateInvitation(ctx(c), actor(c), c.FormValue("role"), time.Duration(hours)*time.Hour)
	if err != nil {
		return w.refused(c, "invite", err, show)
	}
	return w.showLink(c, linkView{What: "Invitation", For: inv.Role, URL: w.linkBase(c) + account.InvitePath + inv.Token, Expires: inv.ExpiresAt, Back: "/admin/invitations"})
}

func (w *ui) revokeInvitation(c echo.Context) error {
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err == nil {
		err = w.Accounts.RevokeInvitation(ctx(c), actor(c), id)
	} else {
		err = problem.New(problem.NotFound, "no such invitation")
	}
	if err != nil {
		return w.refused(c, "invitations", err, func(fe *formError) error { return w.showInvitations(c, fe.Status, fe) })
	}
	return done(c, "/admin/invitations", "invite-revoked")
}

// inviteView is the page an invitation link opens.
type inviteView struct {
	Role    string
	Invalid string // why the link cannot be used; "" when it can
}

// linkPage renders a page a one-time link opens with data v. look finds
// what the link is for and fills v; a problem it returns (an unknown, used
// or expired link) goes to *invalid, shown on the page with its status.
func (w *ui) linkPage(c echo.Context, status int, fe *formError, name, title string, v any, invalid *string, look func() error) error {
	err := look()
	switch {
	case problem.KindOf(err) != 0:
		*invalid = err.Error()
		status, _ = problem.HTTPStatus(problem.KindOf(err))
	case err != nil:
		return err
	}
	return w.render(c, status, name, page{Title: title, Err: fe, Data: v})
}

func (w *ui) invitePage(c echo.Context, status int, fe *formError) error {
	v := &inviteView{}
	return w.linkPage(c, status, fe, "invite", "Accept an invitation", v, &v.Invalid, func() error {
		inv, err := w.Accounts.Invitation(ctx(c), c.Param("token"))
		if err == nil {
			v.Role = inv.Role
		}
		return err
	})
}

func (w *ui) inviteForm(c echo.Context) error { return w.invitePage(c, http.StatusOK, nil) }

// acceptInvite creates the invitee's account and logs them in.
func (w *ui) acceptInvite(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("username"))
	show := func(fe *formError) error { return w.invitePage(c, fe.Status, fe) }
	if err := w.rateLimit(c, name); err != nil {
		return w.refused(c, "invite", err, show)
	}
	u, err := w.Accounts.AcceptInvitation(ctx(c), c.Param("token"), account.NewUser{
		Username: name, Email: c.FormValue("email"), Password: c.FormValue("password"),
	})
	if err != nil {
		return w.refused(c, "invite", err, show)
	}
	secret, err := w.Accounts.CreateSession(ctx(c), u)
	if err != nil {
		return err
	}
	w.setSession(c, secret)
	return c.Redirect(http.StatusSeeOther, "/dashboard")
}

// resetView is the page a password-reset link opens.
type resetView struct {
	Username string
	Invalid  string
}

func (w *ui) resetPage(c echo.Context, status int, fe *formError) error {
	v := &resetView{}
	return w.linkPage(c, status, fe, "reset", "Set a new password", v, &v.Invalid, func() error {
		u, err := w.Accounts.PasswordResetUser(ctx(c), c.Param("token"))
		if err == nil {
			v.Username = u.Username
		}
		return err
	})
}

func (w *ui) resetForm(c echo.Context) error { return w.resetPage(c, http.StatusOK, nil) }

func (w *ui) resetPassword(c echo.Context) error {
	show := func(fe *formError) error { return w.resetPage(c, fe.Status, fe) }
	if !w.Limiter.Allow("ip:" + c.RealIP()) { // per address only, as the API's
		c.Response().Header().Set("Retry-After", "60")
		return w.refused(c, "reset", errTooMany, show)
	}
	if _, err := w.Accounts.ResetPassword(ctx(c), c.Param("token"), c.FormValue("password")); err != nil {
		return w.refused(c, "reset", err, show)
	}
	w.setSession(c, "") // this browser's session, if any, ended with the others
	return done(c, "/login", "password-set")
}
