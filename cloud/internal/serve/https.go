package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"homeport.dev/cloud/internal/apitls"
	"homeport.dev/cloud/internal/budget"
)

// buildHTTPS prepares the cloud's own HTTPS (nil when off) and makes
// /readyz report its certificate.
func (a *App) buildHTTPS() error {
	cfg := a.Config
	if !cfg.TLS.On() {
		return nil
	}
	var err error
	a.TLS, err = apitls.New(apitls.Options{Host: cfg.APIHost, TLS: cfg.TLS, StorageDir: cfg.StorageDir(), Log: a.log,
		WaitPublic: func(ctx context.Context) error {
			if a.HAProxy == nil {
				return nil // external: HAProxy's own readiness is not ours to see
			}
			return a.HAProxy.WaitReady(ctx)
		},
	})
	if err != nil {
		return err
	}
	a.API.Checks["https"] = a.TLS.Check
	return nil
}

// PublicURL is the cloud's public base URL: https://API-HOST (with the
// public HTTPS port, --public-https-port, when it is not 443), or empty when
// HTTPS is off (then pages use the URL the browser used).
func (a *App) PublicURL() string {
	cfg := a.Config
	if !cfg.TLS.On() {
		return ""
	}
	host := cfg.APIHost
	if cfg.PublicHTTPSPort != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(cfg.PublicHTTPSPort))
	}
	return "https://" + host
}

// extraAddrs are the listeners started by startHTTPS; nil when off.
type extraAddrs struct {
	TLS, Metrics net.Addr
}

// startHTTPS starts the cloud's TLS listener (for HAProxy) and the metrics
// endpoint, each until ctx ends; wg waits for them.
func (a *App) startHTTPS(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) (extraAddrs, error) {
	cfg := a.Config
	for _, w := range cfg.Warnings {
		a.log.Warn(w)
	}
	var out extraAddrs
	var tlsLn net.Listener
	if a.TLS != nil {
		var err error
		if tlsLn, err = net.Listen("tcp", cfg.TLS.Addr); err != nil {
			return out, fmt.Errorf("HTTPS listen on %s: %w (choose another --tls-addr)", cfg.TLS.Addr, err)
		}
		out.TLS = tlsLn.Addr()
		// The same share of the open-files reserve as the plain API.
		tlsLn = netutil.LimitListener(tlsLn, budget.APIConns)
	}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			if tlsLn != nil {
				tlsLn.Close()
			}
			return out, fmt.Errorf("metrics listen on %s: %w (choose another --metrics-addr, or off)", cfg.MetricsAddr, err)
		}
		out.Metrics = mln.Addr()
		handler := a.API.MetricsHandler()
		if cfg.DebugPprof {
			mux := http.NewServeMux()
			mux.Handle("/", handler)
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			handler = mux
		}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 60 * time.Second}
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := srv.Serve(mln); !errors.Is(err, http.ErrServerClosed) {
				report(errc, fmt.Errorf("metrics: %w", err))
			}
		}()
		go func() {
			defer wg.Done()
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(shutdown)
		}()
	}
	if tlsLn != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.TLS.Serve(ctx, tlsLn, a.API); err != nil {
				report(errc, fmt.Errorf("HTTPS: %w", err))
			}
		}()
		a.log.Info("serving the web UI and API over HTTPS through HAProxy", "url", a.PublicURL(), "tls_addr", tlsLn.Addr().String(), "mode", cfg.TLS.Mode)
	}
	return out, nil
}

// report passes a server's failure to Run without blocking when Run has
// already stopped listening (it returns at the first error).
func report(errc chan<- error, err error) {
	select {
	case errc <- err:
	default:
	}
}

// routedAPIHost and routedTLSAddr are what HAProxy routes to the cloud's
// own HTTPS; empty when it is off.
func (a *App) routedAPIHost() string {
	if !a.Config.TLS.On() {
		return ""
	}
	return a.Config.APIHost
}

func (a *App) routedTLSAddr() string {
	if !a.Config.TLS.On() {
		return ""
	}
	return a.Config.TLS.Addr
}
