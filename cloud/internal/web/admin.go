package web

import (
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/mappings"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

func (w *ui) adminUsers(c echo.Context) error { return w.showUsers(c, http.StatusOK, nil) }

func (w *ui) showUsers(c echo.Context, status int, fe *formError) error {
	p, err := listPage(c)
	if err != nil {
		return err
	}
	us, next, err := w.Accounts.Find(ctx(c), account.Filter{Page: p})
	if err != nil {
		return err
	}
	// Pending accounts first: approving them is why an admin comes here.
	sort.SliceStable(us, func(i, j int) bool { return !us[i].Active && us[j].Active })
	return w.render(c, status, "admin_users", page{Title: "Users", Err: fe, Data: usersView{Users: us, Roles: proto.Roles, Next: nextLink(c, next)}})
}

// usersView is the users page: one page of accounts, the roles to choose
// from, and the link to the next page.
type usersView struct {
	Users []store.User
	Roles []string
	Next  string
}

func (w *ui) setActive(c echo.Context, active bool, notice string) error {
	name := c.Param("username")
	show := func(fe *formError) error { return w.showUsers(c, fe.Status, fe) }
	if !active && name == currentUser(c).Username {
		return w.refused(c, "users", problem.New(problem.Invalid, "you cannot deactivate your own account; ask another admin"), show)
	}
	if _, err := w.Accounts.SetActiveBy(ctx(c), account.ActorOf(currentUser(c)), name, active); err != nil {
		return w.refused(c, "users", err, show)
	}
	return done(c, "/admin/users", notice)
}

func (w *ui) approve(c echo.Context) error    { return w.setActive(c, true, "approved") }
func (w *ui) deactivate(c echo.Context) error { return w.setActive(c, false, "deactivated") }

// adminHome is one row of the admin's homes table.
type adminHome struct {
	Slug        string
	Owner       string
	Slot        int
	TunnelPorts proto.PortRange
	TCPPorts    proto.PortRange
	Limit       *int64
	Created     time.Time
}

func (w *ui) adminHomes(c echo.Context) error { return w.showHomes(c, http.StatusOK, nil) }

func (w *ui) showHomes(c echo.Context, status int, fe *formError) error {
	p, err := listPage(c)
	if err != nil {
		return err
	}
	hs, next, err := w.Homes.Find(ctx(c), homes.Filter{Page: p})
	if err != nil {
		return err
	}
	layout := w.Homes.Layout()
	rows := make([]adminHome, 0, len(hs))
	for _, h := range hs {
		rows = append(rows, adminHome{
			Slug: h.Slug, Owner: h.User.Username, Slot: h.Slot, Limit: h.BandwidthLimitKbps,
			TunnelPorts: layout.TunnelPorts(h.Slot), TCPPorts: layout.TCPPorts(h.Slot), Created: h.CreatedAt,
		})
	}
	return w.render(c, status, "admin_homes", page{Title: "Homes", Err: fe, Data: listView[adminHome]{Rows: rows, Next: nextLink(c, next)}})
}

func (w *ui) adminRelease(c echo.Context) error {
	h, err := w.Homes.GetAny(ctx(c), c.Param("slug"))
	if err == nil {
		err = w.Homes.Release(ctx(c), h)
	}
	if err != nil {
		return w.refused(c, "homes", err, func(fe *formError) error { return w.showHomes(c, fe.Status, fe) })
	}
	return done(c, "/admin/homes", "released")
}

func (w *ui) adminMappings(c echo.Context) error {
	p, err := listPage(c)
	if err != nil {
		return err
	}
	ms, next, err := w.Mappings.Find(ctx(c), mappings.Filter{Page: p})
	if err != nil {
		return err
	}
	rows := make([]mappingView, 0, len(ms))
	for _, m := range ms {
		rows = append(rows, mappingView{Mapping: w.Mappings.ToProto(m), Home: m.Home.Slug})
	}
	return w.render(c, http.StatusOK, "admin_mappings", page{Title: "Mappings", Data: listView[mappingView]{Rows: rows, Next: nextLink(c, next)}})
}

// listView is one page of an admin list and the link to the next page.
type listView[T any] struct {
	Rows []T
	Next string
}
