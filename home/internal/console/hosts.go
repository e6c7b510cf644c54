package console

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"homeport.dev/proto"
)

// hosts is the console's Host allow-list. A web page whose name an attacker
// rebinds to 127.0.0.1 reaches the console with its own name in Host (DNS
// rebinding); refusing every name the user did not choose keeps such a page
// from reading the dashboard (and its CSRF token) or posting to it. An IP
// address in Host is always the user's own choice: no DNS answer puts one
// there.
type hosts struct {
	port  string          // the port the console listens on
	local map[string]bool // names answered on that port: localhost, the listen host
	named map[string]bool // console.allowed_hosts, answered on any port (a reverse proxy may sit in front)
}

func newHosts(listenHost, port string, configured []string) hosts {
	h := hosts{port: port, local: map[string]bool{"localhost": true}, named: map[string]bool{}}
	if listenHost != "" && net.ParseIP(listenHost) == nil {
		h.local[strings.ToLower(listenHost)] = true
	}
	for _, n := range configured {
		h.named[strings.ToLower(n)] = true
	}
	return h
}

// allows reports whether the console answers to host (a Host header or an
// Origin's host, with or without a port); defaultPort is the port a missing
// one stands for.
func (h hosts) allows(host, defaultPort string) bool {
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), defaultPort
	}
	name = strings.ToLower(name)
	if h.named[name] {
		return true
	}
	return port == h.port && (h.local[name] || net.ParseIP(name) != nil)
}

// guard refuses a request whose Host is not on the allow-list, and a
// state-changing request that a browser says comes from another site or
// whose Origin (else Referer) is not on it. Requests without either header
// (curl, scripts) still need the CSRF token of a form.
func (h hosts) guard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		r := ec.Request()
		if !h.allows(r.Host, "80") {
			return ec.String(http.StatusForbidden, "This console does not answer to the name "+proto.Printable(r.Host)+
				" (a protection against DNS rebinding). Open it as http://127.0.0.1:"+h.port+
				", or add the name to console.allowed_hosts in the profile's config.yaml and restart the console.\n")
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(ec)
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			return ec.String(http.StatusForbidden, "Cross-site request refused: submit the form from the console's own page.\n")
		}
		from := r.Header.Get("Origin")
		if from == "" {
			from = r.Header.Get("Referer")
		}
		if from != "" && !h.allowsOrigin(r.Host, from) {
			return ec.String(http.StatusForbidden, "Request from "+proto.Printable(from)+" refused: forms are accepted only from the console's own pages.\n")
		}
		return next(ec)
	}
}

// allowsOrigin reports whether an Origin or Referer is the console's own
// page: the host the request was sent to, a configured name, or a loopback
// name on the console's port. Unlike in Host, any other IP address is
// refused: a page served from the attacker's own address has it as origin.
func (h hosts) allowsOrigin(host, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		return false // includes Origin: null (sandboxed frames, file: pages)
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	name, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	ip := net.ParseIP(name)
	return h.named[name] || port == h.port && (h.local[name] || ip != nil && ip.IsLoopback())
}
