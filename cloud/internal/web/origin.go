package web

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/problem"
)

// sameOrigin refuses a state-changing request that comes from another site:
// marked cross-site by the browser (Sec-Fetch-Site), or whose Origin (else
// Referer) names neither the host the request was sent to nor one of the
// cloud's own names (Deps.AllowedHosts). It runs before the CSRF check,
// which stays the defence for clients that send neither header. (The Host
// itself is checked for every request by the API's router.)
func (w *ui) sameOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		from := r.Header.Get("Origin")
		if from == "" {
			from = r.Header.Get("Referer")
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" || from != "" && !w.ownOrigin(r, from) {
			return problem.New(problem.Forbidden, "This form was sent from another site, so it was refused. Open the cloud's own page and submit the form there.")
		}
		return next(c)
	}
}

// ownOrigin reports whether an Origin or Referer is this request's own host
// (same name and port) or one of the cloud's names (on any port, as a
// reverse proxy may change it).
func (w *ui) ownOrigin(r *http.Request, from string) bool {
	u, err := url.Parse(from)
	if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		return false // includes Origin: null (sandboxed frames, file: pages)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	name := u.Hostname()
	if ip := net.ParseIP(name); ip != nil {
		return false // a page served from an IP address is only ever this request's own host
	}
	return w.ownHosts[strings.ToLower(strings.TrimSuffix(name, "."))]
}
