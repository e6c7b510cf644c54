package api

import (
	"net"
	"strings"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/problem"
	"homeport.dev/proto"
)

// allowHosts refuses a request whose Host is not one of the cloud's own
// names (Deps.AllowedHosts: --api-host and --public-host), localhost or an
// IP address. A web page whose name an attacker rebinds to the cloud's
// address reaches it with its own name in Host (DNS rebinding), and so
// cannot use a victim's browser to reach a cloud the attacker cannot reach
// (on a private network) or read its pages. An IP address in Host is
// always the user's own choice: no DNS answer puts one there. The probes
// and metrics answer any name: orchestrators and Prometheus call them by
// whatever name their network gives the cloud, and they carry no
// browser credentials (metrics need a token beyond loopback).
func allowHosts(names []string) echo.MiddlewareFunc {
	allowed := map[string]bool{"localhost": true}
	var own []string
	for _, n := range names {
		if n = strings.ToLower(n); n != "" && !allowed[n] {
			allowed[n] = true
			own = append(own, n)
		}
	}
	use := "its IP address"
	if len(own) > 0 {
		use = strings.Join(own, " or ")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			switch c.Request().URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return next(c)
			}
			name := hostName(c.Request().Host)
			if allowed[name] || net.ParseIP(name) != nil {
				return next(c)
			}
			return problem.New(problem.Forbidden, "this cloud does not answer to the name %s (a protection against DNS rebinding); use %s, which its operator set with --api-host and --public-host",
				proto.Printable(name), use)
		}
	}
}

// hostName is the name in a Host header or an Origin's host: lower case,
// without port, brackets or trailing dot.
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.ToLower(strings.TrimSuffix(host, "."))
}
