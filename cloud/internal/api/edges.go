package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/edges"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// endpoint is the SSH endpoint h dials: its edge's when several cloud nodes
// share the database, else this cloud's.
func (s *Server) endpoint(ctx context.Context, h store.Home) proto.SSHEndpoint {
	if s.Edges == nil {
		ep := s.SSH
		ep.User = h.Slug
		return ep
	}
	return s.Edges.Endpoint(ctx, h, s.SSH)
}

func (s *Server) adminListEdges(c echo.Context) error {
	out := []proto.Edge{}
	if s.Edges == nil {
		return c.JSON(http.StatusOK, out)
	}
	list, err := s.Edges.List(c.Request().Context())
	if err != nil {
		return err
	}
	for _, e := range list {
		out = append(out, EdgeToProto(e))
	}
	return c.JSON(http.StatusOK, out)
}

// EdgeToProto is an edge as the API and the admin page show it.
func EdgeToProto(e edges.Status) proto.Edge {
	return proto.Edge{
		Name: e.Name, SSH: proto.SSHEndpoint{Host: e.SSHHost, Port: e.SSHPort, HostKey: e.HostKey},
		HTTPAddr: e.HTTPAddr, HTTPSAddr: e.HTTPSAddr, Up: e.Up, Load: e.Load, Homes: e.Homes,
		StartedAt: e.StartedAt, HeartbeatAt: e.HeartbeatAt,
	}
}

func (s *Server) adminMoveHome(c echo.Context) error {
	var req proto.MoveHomeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := edges.ValidName(req.Edge); err != nil {
		return problem.InvalidField("edge", err)
	}
	ctx := c.Request().Context()
	h, err := s.Homes.GetAny(ctx, c.Param("slug"))
	if err != nil {
		return err
	}
	if h, err = s.Homes.Move(ctx, h, req.Edge); err != nil {
		return err
	}
	return s.writeHome(c, http.StatusOK, h)
}
