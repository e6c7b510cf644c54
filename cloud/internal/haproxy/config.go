// Package haproxy is the cloud's HAProxy data plane: it renders the HAProxy
// configuration, drives the runtime API over the admin socket, writes the map
// files that survive a restart, and supervises the haproxy process.
//
// Routing lives in string-keyed maps (see [Map]); a route is added or
// removed at run time with [Client] and persisted with [WriteMaps], so HAProxy
// is never reloaded and no connection is dropped.
package haproxy

import (
	_ "embed"
	"errors"
	"fmt"
	"homeport.dev/proto"
	"homeport.dev/proto/atomicfile"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// configTemplate is the canonical HAProxy configuration template;
// deploy/haproxy/haproxy.cfg.tmpl is a byte-identical copy for operators.
//
//go:embed haproxy.cfg.tmpl
var configTemplate string

// Params is the typed configuration of the data plane.
type Params struct {
	HTTPAddr    string    // public HTTP bind address, e.g. ":80" or "127.0.0.1:8080"
	HTTPSAddr   string    // public HTTPS (TLS passthrough) bind address, e.g. ":443"
	TCPHost     string    // bind IP of the public TCP range; empty means all IPv4 addresses
	TCPPorts    PortRange // public TCP ports, routed by destination port
	TunnelPorts PortRange // the only ports HAProxy may forward to
	TunnelHost  string    // IPv4 address the tunnel ports listen on; empty means 127.0.0.1
	MapDir      string    // absolute directory holding https.map, http.map, tcp.map and raw.map
	SocketPath  string    // absolute path of the admin unix socket
	PidFile     string    // optional absolute path of the master's pid file
	MaxConn     int       // global maxconn; 0 lets HAProxy derive it from the fd limit
	// FrontendMaxConn bounds each public frontend's connections; default 10000.
	FrontendMaxConn int
	// RouteMaxConn bounds one route's concurrent connections; default 64
	// (a home's default channel budget: more could not reach it anyway).
	RouteMaxConn int
	// APIHost, when set, is the cloud's own name: HTTPS connections with
	// this SNI, and its ACME HTTP-01 requests on HTTP, go to APITLSAddr (the
	// cloud's TLS listener) with a PROXY v2 header; its other HTTP requests
	// are redirected to https.
	APIHost    string
	APITLSAddr string // IP:port of the cloud's TLS listener, required with APIHost
	// HTTPSPort is the port visitors reach HTTPSAddr on, named in the
	// http->https redirects (443 is left out of the URL). 0 means
	// HTTPSAddr's own port; set it when a NAT or port forward puts the
	// public port elsewhere.
	HTTPSPort int
	// PageDir is the absolute directory WriteConfig writes the visitor
	// pages to (see [OfflinePage]); empty means MapDir.
	PageDir string
	// ReuseHomeConnections sends public HTTP to homes without a PROXY
	// header (the visitor is in X-Forwarded-For), so that one connection
	// to a home serves the requests of many visitors in turn; false binds
	// every connection to the visitor that opened it (home agents older
	// than SSH-2.0-homeport-home-2 refuse HTTP without the header).
	ReuseHomeConnections bool
	// IdlePoolMax bounds the idle connections HAProxy keeps to all homes
	// together with ReuseHomeConnections (see [IdlePoolFor]); 0 keeps none.
	IdlePoolMax int
}

// PortRange is an inclusive range of TCP ports (the API's own type).
type PortRange = proto.PortRange

// withDefaults returns p with the optional fields filled in.
func (p Params) withDefaults() Params {
	if p.TunnelHost == "" {
		p.TunnelHost = "127.0.0.1"
	}
	if p.FrontendMaxConn <= 0 {
		p.FrontendMaxConn = 10000
	}
	if p.RouteMaxConn <= 0 {
		p.RouteMaxConn = 64
	}
	if p.HTTPSPort == 0 {
		_, port, _ := net.SplitHostPort(p.HTTPSAddr)
		p.HTTPSPort, _ = strconv.Atoi(port)
	}
	if p.PageDir == "" {
		p.PageDir = p.MapDir
	}
	return p
}

// redirectPort is what follows the host in an http->https redirect:
// nothing on 443, ":PORT" otherwise.
func (p Params) redirectPort() string {
	if p.HTTPSPort == 443 {
		return ""
	}
	return ":" + strconv.Itoa(p.HTTPSPort)
}

// Validate checks every field once, so the template only ever sees safe values.
func (p Params) Validate() error {
	p = p.withDefaults()
	var errs []error
	for _, a := range []struct{ field, addr string }{{"HTTPAddr", p.HTTPAddr}, {"HTTPSAddr", p.HTTPSAddr}} {
		if err := validateBindAddr(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.field, err))
		}
	}
	if p.TCPHost != "" && net.ParseIP(p.TCPHost) == nil {
		errs = append(errs, fmt.Errorf("TCPHost: %q is not an IP address", p.TCPHost))
	}
	if err := p.TCPPorts.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("TCPPorts: %w", err))
	}
	if err := p.TunnelPorts.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("TunnelPorts: %w", err))
	}
	if p.TCPPorts.Validate() == nil && p.TunnelPorts.Validate() == nil &&
		p.TCPPorts.First <= p.TunnelPorts.Last && p.TunnelPorts.First <= p.TCPPorts.Last {
		errs = append(errs, fmt.Errorf("TCPPorts %s overlaps TunnelPorts %s", p.TCPPorts, p.TunnelPorts))
	}
	if ip := net.ParseIP(p.TunnelHost); ip == nil || ip.To4() == nil {
		errs = append(errs, fmt.Errorf("TunnelHost: %q is not an IPv4 address", p.TunnelHost))
	}
	for _, f := range []struct {
		field, path string
		optional    bool
	}{{"MapDir", p.MapDir, false}, {"SocketPath", p.SocketPath, false}, {"PidFile", p.PidFile, true}, {"PageDir", p.PageDir, false}} {
		if f.optional && f.path == "" {
			continue
		}
		if !validPath(f.path) {
			errs = append(errs, fmt.Errorf("%s: %q must be an absolute path of [A-Za-z0-9._/+-]", f.field, f.path))
		}
	}
	if p.APIHost != "" || p.APITLSAddr != "" {
		if err := proto.ValidateHostname(p.APIHost); err != nil {
			errs = append(errs, fmt.Errorf("APIHost: %w", err))
		} else if net.ParseIP(p.APIHost) != nil {
			errs = append(errs, fmt.Errorf("APIHost: %q is an IP address, not a name", p.APIHost))
		}
		if host, port, err := net.SplitHostPort(p.APITLSAddr); err != nil || net.ParseIP(host) == nil || net.ParseIP(host).To4() == nil || !validPort(port) {
			errs = append(errs, fmt.Errorf("APITLSAddr: %q must be IPv4:PORT", p.APITLSAddr))
		}
	}
	if validateBindAddr(p.HTTPSAddr) == nil && (p.HTTPSPort < 1 || p.HTTPSPort > 65535) {
		errs = append(errs, fmt.Errorf("HTTPSPort: %d is not a port", p.HTTPSPort))
	}
	if p.MaxConn < 0 {
		errs = append(errs, fmt.Errorf("MaxConn: %d must not be negative", p.MaxConn))
	}
	if p.IdlePoolMax < 0 {
		errs = append(errs, fmt.Errorf("IdlePoolMax: %d must not be negative", p.IdlePoolMax))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("haproxy: invalid params: %w", err)
	}
	return nil
}

// validateBindAddr accepts "host:port" where host is empty or an IP literal.
func validateBindAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("%q: host must be empty or an IP address", addr)
	}
	if !validPort(port) {
		return fmt.Errorf("%q: invalid port", addr)
	}
	return nil
}

// IdlePoolPurge is how often HAProxy closes idle connections to homes
// beyond the recent peak of busy ones.
const IdlePoolPurge = 5 * time.Second

// IdlePoolFor sizes Params.IdlePoolMax from the channels all homes may
// hold together (the edge's share of file descriptors): each idle
// connection to a home is an open channel, so the pool takes at most a
// quarter of them (and 10,000), leaving the rest to connections in use. An
// idle pool larger than the share made every new connection beyond it
// fail (502) once 500 homes had been visited on a 20,000-file limit.
func IdlePoolFor(edgeChannels int) int {
	return max(0, min(edgeChannels/4, 10000))
}

// Render returns the HAProxy configuration for p.
func Render(p Params) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.withDefaults()
	tmpl, err := template.New("haproxy.cfg").Option("missingkey=error").Parse(configTemplate)
	if err != nil {
		return nil, fmt.Errorf("haproxy: parse template: %w", err)
	}
	data := struct {
		Params
		TCPBind                           string
		HTTPSMap, HTTPMap, TCPMap, RawMap string
		RedirectPort                      string
		OfflinePage                       string
		OfflineRetryAfter                 int
		IdlePoolMax                       int
		IdlePoolPurge                     string
	}{
		Params:            p,
		TCPBind:           net.JoinHostPort(p.TCPHost, p.TCPPorts.String()), // brackets an IPv6 host
		HTTPSMap:          MapPath(p.MapDir, MapHTTPS),
		HTTPMap:           MapPath(p.MapDir, MapHTTP),
		TCPMap:            MapPath(p.MapDir, MapTCP),
		RawMap:            MapPath(p.MapDir, MapRaw),
		RedirectPort:      p.redirectPort(),
		OfflinePage:       filepath.Join(p.PageDir, offlinePageFile),
		OfflineRetryAfter: offlineRetryAfter,
		IdlePoolMax:       p.IdlePoolMax,
		IdlePoolPurge:     fmt.Sprintf("%ds", int(IdlePoolPurge.Seconds())),
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("haproxy: render config: %w", err)
	}
	return []byte(b.String()), nil
}

// WriteConfig renders p and atomically replaces the file at path (mode
// 0640), after writing the visitor pages it names into p.PageDir.
func WriteConfig(path string, p Params) error {
	cfg, err := Render(p)
	if err != nil {
		return err
	}
	if err := writePages(p.withDefaults().PageDir); err != nil {
		return err
	}
	return atomicfile.Write(path, cfg, 0o640)
}
