// Package apitls serves the cloud's own name (--api-host) over HTTPS: the
// web UI and the REST API behind a TLS listener that only HAProxy reaches.
// HAProxy passes the public connections for that name through untouched
// (TLS by SNI from its HTTPS port, ACME HTTP-01 requests from its HTTP port),
// each with a PROXY v2 header, so HAProxy never holds a key and the cloud
// still sees every client's address.
//
// The certificate comes from an ACME CA through certmagic (account, keys
// and certificates in DATA/certmagic, renewal, OCSP stapling), or from the
// operator's own files, re-read when they change.
package apitls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"homeport.dev/cloud/internal/config"
)

// Options shape the cloud's HTTPS.
type Options struct {
	Host       string     // the name served (config.Config.APIHost)
	TLS        config.TLS // mode, CA, files
	StorageDir string     // certmagic's storage (config.Config.StorageDir)
	Log        *slog.Logger
	// WaitPublic, if set, blocks until the public ports reach the listener
	// (HAProxy is up): a certificate is requested only then, since the CA
	// validates through them and a failed validation costs rate limit.
	WaitPublic func(context.Context) error
}

// Server serves one handler over HTTPS for one name.
type Server struct {
	opts    Options
	log     *slog.Logger
	getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)

	// ACME mode only.
	magic  *certmagic.Config
	cache  *certmagic.Cache
	issuer *certmagic.ACMEIssuer
}

// New prepares the certificate source; nothing touches the network until
// Serve.
func New(o Options) (*Server, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Server{opts: o, log: o.Log.With("host", o.Host)}
	switch o.TLS.Mode {
	case config.HTTPSFiles:
		f, err := newFileCert(o.TLS.CertFile, o.TLS.KeyFile, s.log)
		if err != nil {
			return nil, err
		}
		s.getCert = f.get
	case config.HTTPSACME:
		if err := s.buildACME(); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("apitls: HTTPS is off")
	}
	return s, nil
}

func (s *Server) buildACME() error {
	o := s.opts
	if err := os.MkdirAll(o.StorageDir, 0o700); err != nil {
		return fmt.Errorf("certificate storage: %w", err)
	}
	if err := os.Chmod(o.StorageDir, 0o700); err != nil {
		return fmt.Errorf("certificate storage: %w", err)
	}
	var roots *x509.CertPool
	if o.TLS.TrustedRoots != "" {
		b, err := os.ReadFile(o.TLS.TrustedRoots)
		if err != nil {
			return fmt.Errorf("--acme-trusted-roots: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return fmt.Errorf("--acme-trusted-roots: %s holds no PEM certificate", o.TLS.TrustedRoots)
		}
	}
	zl := zapToSlog(s.log)
	s.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return s.magic, nil },
		RenewCheckInterval: o.TLS.RenewCheck,
		Logger:             zl,
	})
	s.magic = certmagic.New(s.cache, certmagic.Config{
		Storage:           &certmagic.FileStorage{Path: o.StorageDir},
		DefaultServerName: o.Host, // clients without SNI
		Logger:            zl,
		OnEvent:           s.event,
	})
	s.issuer = certmagic.NewACMEIssuer(s.magic, certmagic.ACMEIssuer{
		CA: o.TLS.ACMECA, Email: o.TLS.ACMEEmail, Agreed: true, Profile: o.TLS.ACMEProfile,
		TrustedRoots: roots, Logger: zl,
	})
	s.magic.Issuers = []certmagic.Issuer{s.issuer}
	s.getCert = s.magic.GetCertificate
	return nil
}

// event logs certmagic's milestones with the cloud's keys.
func (s *Server) event(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtained":
		s.log.Info("certificate obtained", "renewal", data["renewal"], "issuer", data["issuer"])
	case "cert_failed":
		s.log.Error("certificate not obtained; retrying later", "renewal", data["renewal"], "err", data["error"])
	}
	return nil
}

// Serve answers on ln, whose connections come from HAProxy and start with a
// PROXY v2 header: TLS ones get h over HTTPS (with HSTS), plain-HTTP ones
// only ACME HTTP-01 challenges. It obtains or renews the certificate in the
// background and returns when ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	sp := newSplitter(ln)
	tlsConf := &tls.Config{GetCertificate: s.getCert, MinVersion: tls.VersionTLS12}
	challenges := http.NotFoundHandler()
	if s.magic != nil {
		tlsConf = s.magic.TLSConfig() // answers TLS-ALPN-01 too
		tlsConf.MinVersion = tls.VersionTLS12
		challenges = s.issuer.HTTPChallengeHandler(challenges)
		// certmagic solves a challenge with its own listener unless the
		// address is taken; point it at this one, which answers both kinds
		// (HTTP-01 from HAProxy's HTTP port, TLS-ALPN-01 from its HTTPS one).
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		p, _ := strconv.Atoi(port)
		s.issuer.ListenHost, s.issuer.AltHTTPPort, s.issuer.AltTLSALPNPort = addrHost(ln.Addr()), p, p
	}
	tlsConf.NextProtos = append([]string{"h2", "http/1.1"}, tlsConf.NextProtos...)
	secure := &http.Server{
		Handler: hsts(h), TLSConfig: tlsConf,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug), // failed handshakes are the internet's noise
	}
	plain := &http.Server{Handler: challenges, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}

	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Add(3)
	go func() { defer wg.Done(); sp.run() }()
	go func() { defer wg.Done(); errc <- secure.ServeTLS(sp.tls, "", "") }()
	go func() { defer wg.Done(); errc <- plain.Serve(sp.plain) }()
	if s.magic != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.manage(ctx)
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	secure.Shutdown(shutdown)
	plain.Shutdown(shutdown)
	sp.close()
	wg.Wait()
	if s.cache != nil {
		s.cache.Stop()
	}
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// manage loads the certificate from storage, or obtains one once the
// public ports work, and keeps it renewed until ctx ends.
func (s *Server) manage(ctx context.Context) {
	if s.opts.WaitPublic != nil {
		if err := s.opts.WaitPublic(ctx); err != nil {
			if ctx.Err() == nil {
				s.log.Error("the public ports never came up; no certificate requested", "err", err)
			}
			return
		}
	}
	if err := s.magic.ManageAsync(ctx, []string{s.opts.Host}); err != nil {
		s.log.Error("certificate management did not start", "err", err)
	}
}

// Check reports whether a valid certificate for the name is in service
// (for /readyz).
func (s *Server) Check(context.Context) error {
	var leaf *x509.Certificate
	if s.cache != nil {
		for _, c := range s.cache.AllMatchingCertificates(s.opts.Host) {
			if c.Leaf != nil && (leaf == nil || c.Leaf.NotAfter.After(leaf.NotAfter)) {
				leaf = c.Leaf
			}
		}
	} else if c, err := s.getCert(&tls.ClientHelloInfo{ServerName: s.opts.Host}); err == nil {
		leaf = c.Leaf
	}
	switch {
	case leaf == nil:
		return fmt.Errorf("no certificate for %s yet", s.opts.Host)
	case time.Now().After(leaf.NotAfter):
		return fmt.Errorf("the certificate for %s expired at %s", s.opts.Host, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// hsts tells browsers to use HTTPS for this name from now on.
func hsts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		h.ServeHTTP(w, r)
	})
}

func addrHost(a net.Addr) string {
	host, _, _ := net.SplitHostPort(a.String())
	return host
}
