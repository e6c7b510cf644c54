package api

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/problem"
	"homeport.dev/proto"
)

func (s *Server) listDomains(c echo.Context) error {
	h, err := s.home(c)
	if err != nil {
		return err
	}
	ds, err := s.Domains.List(c.Request().Context(), h.ID)
	if err != nil {
		return err
	}
	out := make([]proto.BaseDomain, 0, len(ds))
	for _, d := range ds {
		out = append(out, proto.BaseDomain{Domain: d.Domain, CreatedAt: d.CreatedAt})
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) registerDomain(c echo.Context) error {
	h, err := s.home(c)
	if err != nil {
		return err
	}
	var req proto.BaseDomainRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	d, err := s.Domains.Register(c.Request().Context(), h.ID, req.Domain)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, proto.BaseDomain{Domain: d.Domain, CreatedAt: d.CreatedAt})
}

func (s *Server) removeDomain(c echo.Context) error {
	h, err := s.home(c)
	if err != nil {
		return err
	}
	d, err := url.PathUnescape(c.Param("domain"))
	if err != nil {
		return problem.New(problem.Invalid, "malformed domain in path")
	}
	if err := s.Domains.Remove(c.Request().Context(), h.ID, d); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
