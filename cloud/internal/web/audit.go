package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/proto"
)

// auditActor names the actor of the changes a page makes: the logged-in
// user (as an admin on /admin pages), or nobody yet (signup, login, links),
// from the address the API's middleware put in the context already.
func (w *ui) auditActor(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		a := audit.From(ctx(c))
		a.Kind, a.Name, a.Addr = proto.ActorUser, "", c.RealIP()
		if u := c.Get(ctxUser); u != nil {
			a.Name = currentUser(c).Username
			if strings.HasPrefix(c.Path(), "/admin/") {
				a.Kind = proto.ActorAdmin
			}
		}
		c.SetRequest(c.Request().WithContext(audit.With(ctx(c), a)))
		return next(c)
	}
}

// auditView is the audit page: the filter as typed, one page of records,
// and the link to the next one.
type auditView struct {
	Filter  url.Values
	Records []proto.AuditRecord
	Next    string
	Error   string
}

func (w *ui) adminAudit(c echo.Context) error {
	q := c.QueryParams()
	v := auditView{Filter: q}
	status := http.StatusOK
	f, err := audit.ParseFilter(q.Get, time.Now())
	if err == nil {
		rs, next, qerr := audit.Query(ctx(c), w.DB, f)
		for _, r := range rs {
			v.Records = append(v.Records, audit.ToProto(r))
		}
		if next != "" {
			n := url.Values{}
			for k, vs := range q {
				n[k] = vs
			}
			n.Set("cursor", next)
			v.Next = "/admin/audit?" + n.Encode()
		}
		err = qerr
	}
	if err != nil {
		var p *problem.Error
		if !errors.As(err, &p) {
			return err
		}
		status, _ = problem.HTTPStatus(p.Kind)
		v.Error = p.Message
	}
	return w.render(c, status, "admin_audit", page{Title: "Audit log", Data: v})
}
