package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// anonymousActor puts an actor without a name (not yet authenticated) and
// the client address into every request's context; require names it. A
// signup or a password login is then recorded under the account it is for.
func anonymousActor(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		setActor(c, audit.Actor{Kind: proto.ActorUser, Addr: c.RealIP()})
		return next(c)
	}
}

// auditActor is who the audit log says made a change: the home whose
// credential signed the request, an account on an admin route, or an
// account.
func auditActor(c echo.Context, p principal, level authLevel) audit.Actor {
	a := audit.Actor{Kind: proto.ActorUser, Name: p.user.Username, Addr: c.RealIP()}
	switch {
	case p.home != nil:
		a.Kind, a.Name = proto.ActorHome, p.home.Slug
	case level == authAdmin:
		a.Kind = proto.ActorAdmin
	}
	return a
}

func setActor(c echo.Context, a audit.Actor) {
	c.SetRequest(c.Request().WithContext(audit.With(c.Request().Context(), a)))
}

func (s *Server) adminAudit(c echo.Context) error { return s.auditPage(c, 0) }

func (s *Server) ownAudit(c echo.Context) error { return s.auditPage(c, caller(c).ID) }

// auditPage answers a page of the records the query selects; ownerID
// limits them to one account's.
func (s *Server) auditPage(c echo.Context, ownerID uint64) error {
	f, err := audit.ParseFilter(c.QueryParam, time.Now())
	if err != nil {
		return err
	}
	f.OwnerID = ownerID
	rs, next, err := audit.Query(c.Request().Context(), s.DB, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, auditToProto(rs, next))
}

func auditToProto(rs []store.AuditRecord, next string) proto.AuditPage {
	out := proto.AuditPage{Records: make([]proto.AuditRecord, 0, len(rs)), Next: next}
	for _, r := range rs {
		out.Records = append(out.Records, audit.ToProto(r))
	}
	return out
}
