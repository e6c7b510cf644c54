package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"homeport.dev/proto"
)

func (s *Server) listMappings(c echo.Context) error {
	h, err := s.home(c)
	if err != nil {
		return err
	}
	ms, err := s.Mappings.List(c.Request().Context(), h.ID)
	if err != nil {
		return err
	}
	out := make([]proto.Mapping, 0, len(ms))
	for _, m := range ms {
		out = append(out, s.Mappings.ToProto(m))
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
