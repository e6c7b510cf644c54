package web

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"gopkg.in/yaml.v3"

	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// homeView is one home as the dashboard shows it.
type homeView struct {
	Slug        string
	PublicKey   string
	Fingerprint string
	Limit       *int64
	TunnelPorts proto.PortRange
	TCPPorts    proto.PortRange
	SSH         proto.SSHEndpoint
	Domains     []store.BaseDomain
	Mappings    []mappingView
	Created     time.Time
	Live        liveHome // online, traffic, chart (live.go)
}

// mappingView is a mapping with the address the public reaches it at.
type mappingView struct {
	proto.Mapping
	Home string // the home's slug, on the admin page
}

// SSHCommand is the plain OpenSSH line that serves a mapping without the
// PROXY header, for a local service on port 3000 (the page says to change it).
func (m mappingView) SSHCommand(ep proto.SSHEndpoint) string {
	return fmt.Sprintf("ssh -N -R 127.0.0.1:%d:localhost:3000 -p %d %s@%s", m.TunnelPort, ep.Port, ep.User, ep.Host)
}

// Address is where the mapping is reached, or "private".
func (m mappingView) Address() string {
	switch {
	case m.Private:
		return "private (home connect only)"
	case m.Scheme == proto.SchemeTCP:
		return fmt.Sprintf("tcp port %d", m.PublicPort)
	default:
		return m.Scheme + "://" + m.Host
	}
}

type dashboardView struct {
	Homes  []homeView
	Tokens []proto.Token
}

func (w *ui) dashboard(c echo.Context) error { return w.showDashboard(c, http.StatusOK, nil) }

func (w *ui) showDashboard(c echo.Context, status int, fe *formError) error {
	u := currentUser(c)
	hs, err := w.Homes.List(ctx(c), u)
	if err != nil {
		return err
	}
	var v dashboardView
	for _, h := range hs {
		hv, err := w.homeView(c, h)
		if err != nil {
			return err
		}
		v.Homes = append(v.Homes, hv)
	}
	if v.Tokens, err = w.Accounts.Tokens(ctx(c), u); err != nil {
		return err
	}
	return w.render(c, status, "dashboard", page{Title: "Dashboard", Err: fe, Data: v})
}

func (w *ui) homeView(c echo.Context, h store.Home) (homeView, error) {
	ds, err := w.Domains.List(ctx(c), h.ID)
	if err != nil {
		return homeView{}, err
	}
	ms, err := w.Mappings.List(ctx(c), h.ID)
	if err != nil {
		return homeView{}, err
	}
	layout := w.Homes.Layout()
	v := homeView{
		Slug: h.Slug, PublicKey: h.PublicKey, Fingerprint: h.KeyFingerprint, Limit: h.BandwidthLimitKbps,
		TunnelPorts: layout.TunnelPorts(h.Slot), TCPPorts: layout.TCPPorts(h.Slot),
		SSH: w.endpoint(h), Domains: ds, Created: h.CreatedAt,
	}
	for _, m := range ms {
		v.Mappings = append(v.Mappings, mappingView{Mapping: w.Mappings.ToProto(m)})
	}
	v.Live = w.live(h, w.stats(), ms, true)
	return v, nil
}

// failed shows the dashboard again with err beside form, when err is a
// problem the user can fix.
func (w *ui) failed(c echo.Context, form string, err error) error {
	return w.refused(c, form, err, func(fe *formError) error { return w.showDashboard(c, fe.Status, fe) })
}

// home resolves :slug to one of the user's own homes.
func (w *ui) home(c echo.Context) (store.Home, error) {
	return w.Homes.Get(ctx(c), currentUser(c), c.Param("slug"))
}

func (w *ui) claim(c echo.Context) error {
	if _, err := w.Homes.Claim(ctx(c), currentUser(c), c.FormValue("public_key")); err != nil {
		return w.failed(c, "claim", err)
	}
	return done(c, "/dashboard", "claimed")
}

func (w *ui) release(c echo.Context) error {
	h, err := w.home(c)
	if err != nil {
		return err
	}
	if err := w.Homes.Release(ctx(c), h); err != nil {
		return w.failed(c, "release:"+h.Slug, err)
	}
	return done(c, "/dashboard", "released")
}

func (w *ui) bandwidth(c echo.Context) error {
	h, err := w.home(c)
	if err != nil {
		return err
	}
	form := "bandwidth:" + h.Slug
	limit := proto.Null[int64]()
	if raw := strings.TrimSpace(c.FormValue("limit_kbps")); raw != "" {
		v, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return w.failed(c, form, problem.InvalidField("limit_kbps", fmt.Errorf("the limit must be a whole number of kbit/s, or empty for no limit")))
		}
		limit = proto.Some(v)
	}
	if _, err := w.Homes.Patch(ctx(c), h, proto.PatchHomeRequest{BandwidthLimitKbps: limit}); err != nil {
		return w.failed(c, form, err)
	}
	return done(c, "/dashboard", "bandwidth")
}

func (w *ui) addDomain(c echo.Context) error {
	h, err := w.home(c)
	if err != nil {
		return err
	}
	if _, err := w.Domains.Register(ctx(c), h.ID, c.FormValue("domain")); err != nil {
		return w.failed(c, "domain:"+h.Slug, err)
	}
	return done(c, "/dashboard", "domain-added")
}

func (w *ui) removeDomain(c echo.Context) error {
	h, err := w.home(c)
	if err != nil {
		return err
	}
	if err := w.Domains.Remove(ctx(c), h.ID, c.Param("domain")); err != nil {
		return w.failed(c, "domain:"+h.Slug, err)
	}
	return done(c, "/dashboard", "domain-removed")
}

func (w *ui) addMapping(c echo.Context) error {
	h, err := w.home(c)
	if err != nil {
		return err
	}
	form := "mapping:" + h.Slug
	req := proto.MappingRequest{
		Name:    c.FormValue("name"),
		Scheme:  c.FormValue("scheme"),
		Host:    c.FormValue("host"),
		Private: c.FormValue("private") != "",
	}
	if c.FormValue("client") == "openssh" {
		// Plain `ssh -R` hands the tunnel's bytes straight to the app,
		// which must not get a PROXY header first.
		off := false
		req.ProxyProtocol = &off
	}
	if raw := strings.TrimSpace(c.FormValue("public_port")); raw != "" {
		if req.PublicPort, err = strconv.Atoi(raw); err != nil {
			return w.failed(c, form, problem.InvalidField("public_port", fmt.Errorf("the public port must be a number in this home's range")))
		}
	}
	if _, err := w.Mappings.Create(ctx(c), h, req); err != nil {
		return w.failed(c, form, err)
	}
	return done(c, "/dashboard", "mapping-added")
}

func (w *ui) deleteMapping(c echo.Context) error {
	h, err := w.home(c)
	if err != nil {
		return err
	}
	id, err := idParam(c)
	if err != nil {
		return err
	}
	if err := w.Mappings.Delete(ctx(c), h, id); err != nil {
		return w.failed(c, "mapping:"+h.Slug, err)
	}
	return done(c, "/dashboard", "mapping-deleted")
}

// cloudURL is the base URL homes use for the API: --api-host's URL when the
// cloud has one, else the URL the browser used.
func (w *ui) cloudURL(c echo.Context) string {
	if w.CloudURL != "" {
		return w.CloudURL
	}
	return c.Scheme() + "://" + c.Request().Host
}

// clientConfig is the file `home import` reads: everything the agent needs
// to reach this home, the SSH host key pinned, and no secret (the home
// proves itself with its private key).
func (w *ui) clientConfig(c echo.Context) error {
	h, err := w.home(c)
	if err != nil {
		return err
	}
	ep := w.endpoint(h)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# homeport client config for home %s. It holds no secret.\n", h.Slug)
	fmt.Fprintf(&buf, "# Use it on the machine that has the home's private key:\n")
	fmt.Fprintf(&buf, "#   home import homeport-%s.yaml --private-key ~/.ssh/id_ed25519\n", h.Slug)
	fmt.Fprintf(&buf, "# The SSH host key below is the one this cloud presents; home import pins it.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(proto.ClientConfig{
		Kind: proto.ClientConfigKind, CloudURL: w.cloudURL(c), Slug: h.Slug, PublicKey: h.PublicKey,
		SSH:          proto.ClientConfigSSH(ep),
		SharedDomain: w.SharedDomain,
	}); err != nil {
		return err
	}
	c.Response().Header().Set("Content-Disposition", `attachment; filename="homeport-`+h.Slug+`.yaml"`)
	return c.Blob(http.StatusOK, "text/yaml; charset=utf-8", buf.Bytes())
}

// idParam parses the numeric :id path parameter.
func idParam(c echo.Context) (uint64, error) {
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil || id == 0 {
		return 0, problem.New(problem.Invalid, "id must be a positive integer")
	}
	return id, nil
}
