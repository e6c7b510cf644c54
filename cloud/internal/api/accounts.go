package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/proto"
)

func (s *Server) rateLimit(c echo.Context, username string) error {
	if !s.Limiter.Allow("ip:"+c.RealIP(), "user:"+username) {
		c.Response().Header().Set("Retry-After", "60")
		return echo.NewHTTPError(http.StatusTooManyRequests, "too many attempts; wait a minute and try again")
	}
	return nil
}

func (s *Server) signup(c echo.Context) error {
	var req proto.SignupRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	active, err := account.SignupActive(s.Signup)
	if err != nil {
		return err
	}
	if err := s.rateLimit(c, req.Username); err != nil {
		return err
	}
	u, err := s.Accounts.Create(c.Request().Context(), account.NewUser{Username: req.Username, Email: req.Email, Password: req.Password, Active: active})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, account.ToProto(u))
}

func (s *Server) createTokenWithPassword(c echo.Context) error {
	var req proto.TokenRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := s.rateLimit(c, req.Username); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return problem.New(problem.Invalid, "send username and password")
	}
	u, err := s.Accounts.Authenticate(c.Request().Context(), req.Username, req.Password)
	if err != nil {
		return err
	}
	t, err := s.Accounts.CreateToken(c.Request().Context(), u, req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, t)
}

func (s *Server) me(c echo.Context) error {
	return c.JSON(http.StatusOK, account.ToProto(caller(c)))
}

type tokenNameRequest struct {
	Name string `json:"name"`
}

func (s *Server) listTokens(c echo.Context) error {
	ts, err := s.Accounts.Tokens(c.Request().Context(), caller(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ts)
}

func (s *Server) createToken(c echo.Context) error {
	var req tokenNameRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	t, err := s.Accounts.CreateToken(c.Request().Context(), caller(c), req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, t)
}

func (s *Server) rotateToken(c echo.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	t, err := s.Accounts.RotateToken(c.Request().Context(), caller(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (s *Server) deleteToken(c echo.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	if err := s.Accounts.DeleteToken(c.Request().Context(), caller(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
