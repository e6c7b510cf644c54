package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/mappings"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/proto"
)

func (s *Server) adminListUsers(c echo.Context) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	active, err := boolQuery(c, "active")
	if err != nil {
		return err
	}
	us, next, err := s.Accounts.Find(c.Request().Context(), account.Filter{Role: c.QueryParam("role"), Active: active, Page: page})
	if err != nil {
		return err
	}
	out := make([]proto.User, 0, len(us))
	for _, u := range us {
		out = append(out, account.ToProto(u))
	}
	return pageJSON(c, out, next)
}

func (s *Server) setActive(c echo.Context, active bool) error {
	u, err := s.Accounts.SetActiveBy(c.Request().Context(), actor(c), c.Param("username"), active)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, account.ToProto(u))
}

func (s *Server) adminApprove(c echo.Context) error    { return s.setActive(c, true) }
func (s *Server) adminDeactivate(c echo.Context) error { return s.setActive(c, false) }

func (s *Server) adminListHomes(c echo.Context) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	hs, next, err := s.Homes.Find(c.Request().Context(), homes.Filter{Owner: c.QueryParam("owner"), Page: page})
	if err != nil {
		return err
	}
	out, err := s.homesToProto(c.Request().Context(), hs)
	if err != nil {
		return err
	}
	return pageJSON(c, out, next)
}

func (s *Server) adminReleaseHome(c echo.Context) error {
	h, err := s.Homes.GetAny(c.Request().Context(), c.Param("slug"))
	if err != nil {
		return err
	}
	if err := s.Homes.Release(c.Request().Context(), h); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// adminMapping is a mapping with the home it belongs to.
type adminMapping struct {
	proto.Mapping
	Home string `json:"home"`
}

func (s *Server) adminListMappings(c echo.Context) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	ms, next, err := s.Mappings.Find(c.Request().Context(), mappings.Filter{Home: c.QueryParam("home"), Scheme: c.QueryParam("scheme"), Page: page})
	if err != nil {
		return err
	}
	out := make([]adminMapping, 0, len(ms))
	for _, m := range ms {
		out = append(out, adminMapping{Mapping: s.Mappings.ToProto(m), Home: m.Home.Slug})
	}
	return pageJSON(c, out, next)
}

func (s *Server) adminRoutes(c echo.Context) error {
	rep, err := s.Routes.Routes(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

func (s *Server) adminReconcile(c echo.Context) error {
	n, err := s.Routes.Full(c.Request().Context())
	if err != nil {
		return problem.New(problem.Unavailable, "HAProxy did not take the routes: %v; the cloud keeps retrying", err)
	}
	return c.JSON(http.StatusOK, proto.ReconcileResult{Repaired: n})
}
