package api

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/store"
)

// instrument counts requests and their latency by route pattern (never by
// raw path, which would let clients create unbounded label values).
func (s *Server) instrument(reg *prometheus.Registry) echo.MiddlewareFunc {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "homeport_api_requests_total", Help: "API requests by method, route and status.",
	}, []string{"method", "route", "status"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "homeport_api_request_seconds", Help: "API request latency by method and route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
	}, []string{"method", "route"})
	reg.MustRegister(requests, latency)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			requests.WithLabelValues(c.Request().Method, route, strconv.Itoa(c.Response().Status)).Inc()
			latency.WithLabelValues(c.Request().Method, route).Observe(time.Since(start).Seconds())
			return nil
		}
	}
}

// registerMetrics adds gauges read from the database at scrape time, so they
// are always the truth.
func (s *Server) registerMetrics(reg *prometheus.Registry) {
	count := func(model any, where string) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			var n int64
			q := s.DB.WithContext(ctx).Model(model)
			if where != "" {
				q = q.Where(where)
			}
			if q.Count(&n).Error != nil {
				return -1
			}
			return float64(n)
		}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "homeport_users", Help: "Accounts."}, count(&store.User{}, "")),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "homeport_users_pending", Help: "Accounts waiting for approval."}, count(&store.User{}, "active = false")),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "homeport_homes", Help: "Claimed home slots."}, count(&store.Home{}, "")),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "homeport_home_slots", Help: "Home slots in all."}, func() float64 { return float64(s.Homes.Layout().Slots) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "homeport_base_domains", Help: "Registered base domains."}, count(&store.BaseDomain{}, "")),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "homeport_mappings", Help: "Mappings."}, count(&store.Mapping{}, "")),
	)
	s.metricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// metrics answers connections from this machine (Prometheus beside the
// cloud, the cloud CLI) and, from anywhere else, only an admin's token:
// the figures describe every user's homes. --metrics-addr serves the same
// without the API.
func (s *Server) metrics(c echo.Context) error {
	serve := func(c echo.Context) error {
		s.metricsHandler.ServeHTTP(c.Response(), c.Request())
		return nil
	}
	if host, _, err := net.SplitHostPort(c.Request().RemoteAddr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() && c.Request().TLS == nil {
			return serve(c)
		}
	}
	return s.require(authAdmin, s.requireCan(account.ReadAdmin, serve))(c)
}

// MetricsHandler serves the Prometheus metrics without authentication,
// for the --metrics-addr listener.
func (s *Server) MetricsHandler() http.Handler { return s.metricsHandler }
