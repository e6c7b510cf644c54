package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/mappings"
	"homeport.dev/proto"
)

func (s *Server) listMappings(c echo.Context) error {
	h, err := s.home(c)
	if err != nil {
		return err
	}
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	ms, next, err := s.Mappings.Find(c.Request().Context(), mappings.Filter{HomeID: h.ID, Scheme: c.QueryParam("scheme"), Page: page})
	if err != nil {
		return err
	}
	out := make([]proto.Mapping, 0, len(ms))
	for _, m := range ms {
		out = append(out, s.Mappings.ToProto(m))
	}
	return pageJSON(c, out, next)
}

// listPrivateMappings lists the private mappings of every home of the
// caller's account, for `home connect` (any credential of the account).
func (s *Server) listPrivateMappings(c echo.Context) error {
	ctx := c.Request().Context()
	hs, err := s.Homes.List(ctx, caller(c))
	if err != nil {
		return err
	}
	out := []proto.PrivateMapping{}
	for _, h := range hs {
		ms, err := s.Mappings.List(ctx, h.ID)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if !m.Private {
				continue
			}
			p := s.Mappings.ToProto(m)
			out = append(out, proto.PrivateMapping{Home: h.Slug, Name: p.Name, ID: p.ID, Scheme: p.Scheme, Host: p.Host, PublicPort: p.PublicPort,
				TunnelPort: p.TunnelPort, ProxyProtocol: p.ProxyProtocol, State: p.State})
		}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) createMapping(c echo.Context) error {
	h, err := s.home(c)
	if err != nil {
		return err
	}
	var req proto.MappingRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	m, err := s.Mappings.Create(c.Request().Context(), h, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, s.Mappings.ToProto(m))
}

func (s *Server) deleteMapping(c echo.Context) error {
	h, err := s.home(c)
	if err != nil {
		return err
	}
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	if err := s.Mappings.Delete(c.Request().Context(), h, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
