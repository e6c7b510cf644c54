package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/paging"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/proto"
)

// listQueries are the query parameters of the paged lists, for the OpenAPI
// document: every one takes limit and cursor, some filter too.
var listQueries = map[string][][2]string{
	proto.APIPrefix + "/homes":                {},
	proto.APIPrefix + "/homes/:slug/mappings": {{"scheme", "only mappings of this scheme (http, https, tcp)"}},
	proto.APIPrefix + "/admin/homes":          {{"owner", "only the homes of this username"}},
	proto.APIPrefix + "/admin/mappings":       {{"home", "only the mappings of this home (slug)"}, {"scheme", "only mappings of this scheme (http, https, tcp)"}},
	proto.APIPrefix + "/admin/users":          {{"role", "only users of this role"}, {"active", "true: only active users; false: only inactive ones"}},
}

// pageParams are the parameters every paged list takes.
var pageParams = [][2]string{
	{"limit", "at most this many items (1.." + strconv.Itoa(paging.MaxLimit) + "); without it, the whole list, as before lists were paged"},
	{"cursor", "the X-Next-Cursor header of the previous page (also in its Link header, rel=\"next\")"},
}

// pageOf reads ?limit= and ?cursor=.
func pageOf(c echo.Context) (paging.Page, error) {
	return paging.Parse(c.QueryParam("limit"), c.QueryParam("cursor"))
}

// pageJSON answers one page as a JSON array, the shape the lists had before
// they were paged, and names the next page, if any, in X-Next-Cursor and in
// a Link header (rel="next") holding the same request with that cursor.
func pageJSON(c echo.Context, items any, next string) error {
	if next != "" {
		u := *c.Request().URL
		q := u.Query()
		q.Set("cursor", next)
		u.RawQuery = q.Encode()
		h := c.Response().Header()
		h.Set("X-Next-Cursor", next)
		h.Set("Link", "<"+u.RequestURI()+`>; rel="next"`)
	}
	return c.JSON(http.StatusOK, items)
}

// boolQuery reads an optional true/false query parameter.
func boolQuery(c echo.Context, name string) (*bool, error) {
	v := c.QueryParam(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, problem.InvalidField(name, err)
	}
	return &b, nil
}
