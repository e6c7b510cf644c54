package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// home resolves the :slug parameter to one of the caller's homes.
func (s *Server) home(c echo.Context) (store.Home, error) {
	return s.Homes.Get(c.Request().Context(), caller(c), c.Param("slug"))
}

func (s *Server) homeToProto(ctx context.Context, h store.Home) (proto.Home, error) {
	ds, err := s.Domains.List(ctx, h.ID)
	if err != nil {
		return proto.Home{}, err
	}
	names := make([]string, 0, len(ds))
	for _, d := range ds {
		names = append(names, d.Domain)
	}
	layout := s.Homes.Layout()
	ssh := s.SSH
	ssh.User = h.Slug
	return proto.Home{
		Slug: h.Slug, Owner: h.User.Username, PublicKey: h.PublicKey, BandwidthLimitKbps: h.BandwidthLimitKbps,
		BaseDomains: names, SSH: ssh, TunnelPorts: layout.TunnelPorts(h.Slot), TCPPorts: layout.TCPPorts(h.Slot),
		CreatedAt: h.CreatedAt,
	}, nil
}

func (s *Server) homesToProto(ctx context.Context, hs []store.Home) ([]proto.Home, error) {
	out := make([]proto.Home, 0, len(hs))
	for _, h := range hs {
		p, err := s.homeToProto(ctx, h)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *Server) listHomes(c echo.Context) error {
	hs, err := s.Homes.List(c.Request().Context(), caller(c))
	if err != nil {
		return err
	}
	out, err := s.homesToProto(c.Request().Context(), hs)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) claimHome(c echo.Context) error {
	var req proto.ClaimHomeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	u := caller(c)
	h, err := s.Homes.Claim(c.Request().Context(), u, req.PublicKey)
	if err != nil {
		return err
	}
	h.User = u
	return s.writeHome(c, http.StatusCreated, h)
}

func (s *Server) writeHome(c echo.Context, status int, h store.Home) error {
	p, err := s.homeToProto(c.Request().Context(), h)
	if err != nil {
		return err
	}
	return c.JSON(status, p)
}

func (s *Server) getHome(c echo.Context) error {
	h, err := s.home(c)
	if err != nil {
		return err
	}
	return s.writeHome(c, http.StatusOK, h)
}

func (s *Server) patchHome(c echo.Context) error {
	h, err := s.home(c)
	if err != nil {
		return err
	}
	var req proto.PatchHomeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	h, err = s.Homes.Patch(c.Request().Context(), h, req)
	if err != nil {
		return err
	}
	return s.writeHome(c, http.StatusOK, h)
}

func (s *Server) releaseHome(c echo.Context) error {
	h, err := s.home(c)
	if err != nil {
		return err
	}
	if err := s.Homes.Release(c.Request().Context(), h); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
