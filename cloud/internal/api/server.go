// Package api serves the cloud's REST API (JSON under /api/v1), its OpenAPI
// description, health and readiness probes and Prometheus metrics. Handlers
// are thin: they authenticate, decode, call a domain service and encode.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/certorders"
	"homeport.dev/cloud/internal/domains"
	"homeport.dev/cloud/internal/edges"
	"homeport.dev/cloud/internal/homeauth"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/mappings"
	"homeport.dev/cloud/internal/ratelimit"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// maxBody bounds every request body; nothing the API accepts comes close.
const maxBody = "64K"

// Deps are the services the API serves.
type Deps struct {
	DB       *store.DB
	Accounts *account.Service
	Homes    *homes.Service
	Domains  *domains.Service
	Mappings *mappings.Service
	// Certificates counts the certificates homes report obtaining.
	Certificates *certorders.Service
	// SSH is the endpoint homes connect to (User is filled per home).
	SSH proto.SSHEndpoint
	// PublicHTTPPort and PublicHTTPSPort are the ports visitors reach
	// HAProxy on, told to homes so they print URLs that work.
	PublicHTTPPort, PublicHTTPSPort int
	// Edges, when the cloud has several nodes, gives each home its edge's
	// endpoint and lists the edges; nil serves SSH for every home.
	Edges *edges.Registry
	// Checks are extra readiness checks by name (haproxy, shaper, ...); a
	// failing one makes /readyz report degraded.
	Checks map[string]func(context.Context) error
	// Routes is the data plane's view for admins (live HAProxy maps next to
	// the database) and its repair.
	Routes interface {
		Routes(ctx context.Context) (proto.RoutesReport, error)
		Full(ctx context.Context) (int, error)
	}
	// Limiter slows POST /auth/token and /auth/signup per client address
	// and per username (shared with the web UI's login and signup).
	Limiter *ratelimit.Limiter
	// Writes budgets each account's changes per minute (--write-rate):
	// every change is a database write and an audit record, so a tenant
	// looping over create/delete must not grow them without bound.
	Writes   *ratelimit.Limiter
	Log      *slog.Logger
	Registry *prometheus.Registry
	// Signup is --signup: open, approval, invite or closed.
	Signup string
	// PublicURL is the web UI's base URL written into invitation and
	// password-reset links; empty means the URL the request came to.
	PublicURL string
	// AllowedHosts are the cloud's own names (--api-host, --public-host);
	// requests are answered only for these, localhost and IP addresses
	// (hosts.go).
	AllowedHosts []string
}

// Server is the REST API.
type Server struct {
	Deps
	echo   *echo.Echo
	log    *slog.Logger
	routes []route
	// homeAuth verifies requests homes sign with their SSH keys; it holds
	// the nonces of recent ones (replay protection).
	homeAuth *homeauth.Verifier

	metricsHandler http.Handler
}

// New builds the API and registers its routes on a fresh echo instance.
func New(d Deps) *Server {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Writes == nil {
		d.Writes = ratelimit.New(600, time.Minute)
	}
	if d.Limiter == nil {
		d.Limiter = ratelimit.New(10, time.Minute)
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	s := &Server{Deps: d, echo: echo.New(), log: d.Log}
	s.homeAuth = homeauth.NewVerifier(d.Homes.GetAny, homeauth.NewNonces(homeauth.DefaultPerHome, homeauth.DefaultTotal))
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = echo.ExtractIPDirect() // never trust X-Forwarded-For for rate limits
	e.Use(middleware.Recover())
	e.Use(middleware.BodyLimit(maxBody))
	e.Use(s.instrument(d.Registry))
	e.Use(allowHosts(d.AllowedHosts))
	e.Use(anonymousActor)
	s.routes = s.table()
	for _, r := range s.routes {
		need, err := needs(r)
		if err != nil {
			panic(err) // a programming error: the route table is static
		}
		h := r.handler
		if r.auth != authNone {
			h = s.require(r.auth, s.requireCan(need, h))
		}
		e.Add(r.method, r.path, h)
	}
	s.registerMetrics(d.Registry)
	return s
}

// Echo exposes the router, for the web UI to add its pages beside the API.
func (s *Server) Echo() *echo.Echo { return s.echo }

// ServeHTTP makes the server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }
