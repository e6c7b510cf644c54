package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/edges"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// adminEdges lists the cloud's edges (nodes sharing the database): where
// homes and visitors reach them, their homes and load, up or down.
func (w *ui) adminEdges(c echo.Context) error {
	var list []edges.Status
	if w.Edges != nil {
		var err error
		if list, err = w.Edges.List(ctx(c)); err != nil {
			return err
		}
	}
	return w.render(c, http.StatusOK, "admin_edges", page{Title: "Edges", Data: list})
}

// endpoint is the SSH endpoint h dials: its edge's when the cloud has
// several, else this cloud's.
func (w *ui) endpoint(h store.Home) proto.SSHEndpoint {
	if w.Edges == nil {
		ssh := w.SSH
		ssh.User = h.Slug
		return ssh
	}
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return w.Edges.Endpoint(c, h, w.SSH)
}
