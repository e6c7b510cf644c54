package web

import (
	"net/url"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/paging"
)

// adminPageSize is how many rows an admin list shows at once (?limit=
// changes it, up to paging.MaxLimit).
const adminPageSize = 100

// listPage reads the page an admin list shows from ?limit= and ?cursor=.
func listPage(c echo.Context) (paging.Page, error) {
	p, err := paging.Parse(c.QueryParam("limit"), c.QueryParam("cursor"))
	if p.Limit == 0 {
		p.Limit = adminPageSize
	}
	return p, err
}

// nextLink is the address of the list's next page: the same query with the
// cursor next, or "" on the last page.
func nextLink(c echo.Context, next string) string {
	if next == "" {
		return ""
	}
	q := url.Values{}
	for k, vs := range c.QueryParams() {
		q[k] = vs
	}
	q.Set("cursor", next)
	return c.Request().URL.Path + "?" + q.Encode()
}
