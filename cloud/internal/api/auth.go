package api

import (
	"strings"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

type authLevel int

const (
	authNone authLevel = iota
	authUser
	authAdmin
)

const userKey = "homeport.user"

// requireUser authenticates the bearer token; the user it names is the only
// identity handlers ever use.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get("Authorization")
		secret, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || secret == "" {
			return problem.New(problem.Unauthorized, "send an API token as Authorization: Bearer <token>; get one with POST /api/v1/auth/token")
		}
		u, err := s.Accounts.UserByToken(c.Request().Context(), strings.TrimSpace(secret))
		if err != nil {
			return err
		}
		c.Set(userKey, u)
		return next(c)
	}
}

func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if caller(c).Role != proto.RoleAdmin {
			return problem.New(problem.Forbidden, "this needs the admin role")
		}
		return next(c)
	}
}

func caller(c echo.Context) store.User {
	u, _ := c.Get(userKey).(store.User)
	return u
}
