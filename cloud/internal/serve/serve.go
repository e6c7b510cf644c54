// Package serve wires the cloud together: it opens the database, builds the
// services, and runs the API (and, as later parts land, the SSH endpoint and
// the data plane) until its context ends.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/api"
	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/domains"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/mappings"
	"homeport.dev/cloud/internal/sshd"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// App is a wired cloud.
type App struct {
	Config   config.Config
	DB       *store.DB
	Accounts *account.Service
	Homes    *homes.Service
	Domains  *domains.Service
	Mappings *mappings.Service
	API      *api.Server
	log      *slog.Logger
}

// New opens the state in cfg.Data and builds every service.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	db, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, DB: db, log: log}
	if err := a.build(); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) build() error {
	cfg := a.Config
	hostKey, err := sshd.LoadOrCreateHostKey(cfg.HostKeyPath())
	if err != nil {
		return err
	}
	if a.Accounts, err = account.New(a.DB); err != nil {
		return err
	}
	if a.Homes, err = homes.New(a.DB, homes.Options{Layout: cfg.Layout, HomesPerUser: cfg.HomesPerUser}); err != nil {
		return err
	}
	a.Domains = domains.New(a.DB)
	if a.Mappings, err = mappings.New(a.DB, a.Domains, mappings.Options{Layout: cfg.Layout, PerHome: cfg.MappingsPerHome}); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.API = api.New(api.Deps{
		DB: a.DB, Accounts: a.Accounts, Homes: a.Homes, Domains: a.Domains, Mappings: a.Mappings,
		SSH:      proto.SSHEndpoint{Host: cfg.PublicHost, Port: cfg.SSHPort(), HostKey: sshd.AuthorizedKey(hostKey)},
		AuthRate: cfg.AuthRate, Log: a.log, Registry: reg,
	})
	return nil
}

// Close releases the database.
func (a *App) Close() error { return a.DB.Close() }

// Run serves until ctx ends, then shuts down gracefully. ready, if not nil,
// receives the API's listen address once it accepts connections.
func (a *App) Run(ctx context.Context, ready func(apiAddr net.Addr)) error {
	ln, err := net.Listen("tcp", a.Config.APIAddr)
	if err != nil {
		return fmt.Errorf("API listen on %s: %w (is another cloud running? choose another --api-addr)", a.Config.APIAddr, err)
	}
	srv := &http.Server{
		Handler:           a.API,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("cloud API listening", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
