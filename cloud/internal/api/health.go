package api

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"

	"homeport.dev/proto"
)

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, proto.Health{Status: "ok"})
}

// readyz reports each dependency; any failure makes the whole answer 503
// "degraded" while the API keeps accepting changes (the reconciler applies
// them once the dependency is back).
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	checks := map[string]func(context.Context) error{"database": s.pingDB}
	for name, f := range s.Checks {
		checks[name] = f
	}
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	sort.Strings(names)
	out := proto.Health{Status: "ready", Checks: map[string]string{}}
	status := http.StatusOK
	for _, n := range names {
		if err := checks[n](ctx); err != nil {
			out.Checks[n] = err.Error()
			out.Status, status = "degraded", http.StatusServiceUnavailable
		} else {
			out.Checks[n] = "ok"
		}
	}
	return c.JSON(status, out)
}

func (s *Server) pingDB(ctx context.Context) error {
	sqlDB, err := s.DB.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}
