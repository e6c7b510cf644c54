package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/proto"
)

// Account lifecycle: roles, password resets, deletion, invitations. Each
// handler calls one account.Service method, where the change happens.

func actor(c echo.Context) account.Actor { return account.ActorOf(caller(c)) }

// webURL is the base of links the web UI opens (invitations, resets).
func (s *Server) webURL(c echo.Context) string {
	if s.PublicURL != "" {
		return s.PublicURL
	}
	return c.Scheme() + "://" + c.Request().Host
}

func (s *Server) adminSetRole(c echo.Context) error {
	var req proto.RoleRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	u, err := s.Accounts.SetRole(c.Request().Context(), actor(c), c.Param("username"), req.Role)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, account.ToProto(u))
}

func (s *Server) adminPasswordReset(c echo.Context) error {
	r, err := s.Accounts.CreatePasswordReset(c.Request().Context(), actor(c), c.Param("username"))
	if err != nil {
		return err
	}
	r.URL = s.webURL(c) + account.ResetPath + r.Token
	return c.JSON(http.StatusCreated, r)
}

func (s *Server) adminDeleteUser(c echo.Context) error {
	if err := s.Accounts.Delete(c.Request().Context(), actor(c), c.Param("username"), s.Homes.Release); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) adminListInvitations(c echo.Context) error {
	invs, err := s.Accounts.Invitations(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, invs)
}

func (s *Server) adminCreateInvitation(c echo.Context) error {
	var req proto.InvitationRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	inv, err := s.Accounts.CreateInvitation(c.Request().Context(), actor(c), req.Role, time.Duration(req.ValidHours)*time.Hour)
	if err != nil {
		return err
	}
	inv.URL = s.webURL(c) + account.InvitePath + inv.Token
	return c.JSON(http.StatusCreated, inv)
}

func (s *Server) adminRevokeInvitation(c echo.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	if err := s.Accounts.RevokeInvitation(c.Request().Context(), actor(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) acceptInvitation(c echo.Context) error {
	var req proto.AcceptInvitationRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := s.rateLimit(c, req.Username); err != nil {
		return err
	}
	u, err := s.Accounts.AcceptInvitation(c.Request().Context(), req.Token, account.NewUser{Username: req.Username, Email: req.Email, Password: req.Password})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, account.ToProto(u))
}

func (s *Server) resetPassword(c echo.Context) error {
	var req proto.ResetPasswordRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	// Per address only: a budget per link would be one per guess, a global
	// one would let anyone block everybody's resets.
	if !s.Limiter.Allow("ip:" + c.RealIP()) {
		c.Response().Header().Set("Retry-After", "60")
		return echo.NewHTTPError(http.StatusTooManyRequests, "too many attempts; wait a minute and try again")
	}
	u, err := s.Accounts.ResetPassword(c.Request().Context(), req.Token, req.Password)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, account.ToProto(u))
}
