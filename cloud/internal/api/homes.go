package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// home resolves the :slug parameter to one of the caller's homes. A home's
// credential reaches only that home: any other slug, even of the same
// account, is not found, as another user's home is.
func (s *Server) home(c echo.Context) (store.Home, error) {
	slug := c.Param("slug")
	if own, ok := callingHome(c); ok && own.Slug != slug {
		return store.Home{}, problem.New(problem.NotFound, "you have no home %s", proto.Printable(slug))
	}
	return s.Homes.Get(c.Request().Context(), caller(c), slug)
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
	return proto.Home{
		Slug: h.Slug, Owner: h.User.Username, PublicKey: h.PublicKey, BandwidthLimitKbps: h.BandwidthLimitKbps,
		BaseDomains: names, SSH: s.endpoint(ctx, h), TunnelPorts: layout.TunnelPorts(h.Slot), TCPPorts: layout.TCPPorts(h.Slot),
		SharedDomain: s.Domains.SharedDomain(), CreatedAt: h.CreatedAt, Edge: h.Edge,
		PublicHTTPPort: s.PublicHTTPPort, PublicHTTPSPort: s.PublicHTTPSPort,
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
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	f := homes.Filter{OwnerID: caller(c).ID, Page: page}
	if own, ok := callingHome(c); ok { // a home sees only itself
		f.ID = own.ID
	}
	hs, next, err := s.Homes.Find(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out, err := s.homesToProto(c.Request().Context(), hs)
	if err != nil {
		return err
	}
	return pageJSON(c, out, next)
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
	if _, ok := callingHome(c); ok && req.BandwidthLimitKbps.Set {
		return &problem.Error{Kind: problem.Forbidden, Field: "bandwidth_limit_kbps",
			Message: "a home can read its limit; change it in the web UI or with an API token"}
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
