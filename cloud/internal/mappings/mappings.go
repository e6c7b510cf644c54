// Package mappings owns the routes from a public name or port to a home's
// tunnel port: validating requests against the home's base domains and port
// blocks, allocating tunnel ports, and keeping every host and port unique.
package mappings

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gorm.io/gorm"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/domains"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// Service manages mappings.
type Service struct {
	db      *store.DB
	layout  homes.Layout
	domains *domains.Service
	perHome int
	changed func(added, removed []store.Mapping)
	live    func(store.Mapping) string
}

// Options configure a Service.
type Options struct {
	Layout homes.Layout
	// PerHome caps a home's mappings; it is at most the tunnel block size,
	// since each mapping needs its own tunnel port.
	PerHome int
	// Changed, if set, is called after mappings are created or deleted, so the
	// data plane can apply exactly that change.
	Changed func(added, removed []store.Mapping)
	// Live, if set, reports a mapping's live state (whether its tunnel is up).
	Live func(store.Mapping) string
}

// Live states of a mapping.
const (
	StateUp        = "up"         // the home is connected and forwards the tunnel port
	StateNoForward = "no_forward" // the home is connected but does not forward this port
	StateNoTunnel  = "no_tunnel"  // the home is not connected
	// StatePortInUse: the home is connected, but another process on the
	// cloud's machine holds the tunnel port, so the cloud refuses its
	// forward (`cloud check` names the process).
	StatePortInUse = "port_in_use"
)

// New returns a mapping service.
func New(db *store.DB, ds *domains.Service, o Options) (*Service, error) {
	if o.PerHome < 1 || o.PerHome > o.Layout.TunnelBlock {
		return nil, fmt.Errorf("mappings per home must be 1..%d (the tunnel block size), got %d", o.Layout.TunnelBlock, o.PerHome)
	}
	if o.Changed == nil {
		o.Changed = func(_, _ []store.Mapping) {}
	}
	if o.Live == nil {
		o.Live = func(store.Mapping) string { return StateNoTunnel }
	}
	return &Service{db: db, layout: o.Layout, domains: ds, perHome: o.PerHome, changed: o.Changed, live: o.Live}, nil
}

// Check validates a request against the rules that need no database: scheme,
// name (required when private), host syntax, which fields each scheme takes,
// and the home's TCP block.
// shared is the cloud's shared domain: with one, a public http or https
// request may leave the host empty, for Create to pick a name under it.
// It returns the request normalised.
func Check(req proto.MappingRequest, tcpPorts proto.PortRange, shared string) (proto.MappingRequest, error) {
	if err := proto.ValidateScheme(req.Scheme); err != nil {
		return req, problem.InvalidField("scheme", err)
	}
	req.Name = strings.TrimSpace(req.Name)
	switch {
	case req.Name == "" && req.Private:
		return req, problem.InvalidField("name", fmt.Errorf("a private mapping needs a name, unique in its home, like gpu-ui: `home connect NAME` reaches it by that name"))
	case req.Name != "":
		if err := proto.ValidateMappingName(req.Name); err != nil {
			return req, problem.InvalidField("name", err)
		}
	}
	req.Host = proto.NormalizeHostname(req.Host)
	switch req.Scheme {
	case proto.SchemeHTTP, proto.SchemeHTTPS:
		if req.Host == "" && shared != "" && !req.Private {
			break // Create picks a name under the shared domain
		}
		if req.Host == "" && shared != "" {
			return req, problem.InvalidField("host", fmt.Errorf("private %s mappings need a host; only public ones get a name under %s picked for them", req.Scheme, shared))
		}
		if req.Host == "" {
			return req, problem.InvalidField("host", fmt.Errorf("%s mappings need a host, like app.example.com (this cloud has no shared domain to pick a name from: give a host under one of your base domains, or ask the operator to set --shared-domain)", req.Scheme))
		}
		if err := domains.IPLiteral(req.Host); err != nil {
			return req, &problem.Error{Kind: problem.Forbidden, Field: "host", Message: err.Error()}
		}
		if err := proto.ValidateHostname(req.Host); err != nil {
			return req, problem.InvalidField("host", err)
		}
		if req.PublicPort != 0 {
			return req, problem.InvalidField("public_port", fmt.Errorf("%s mappings are reached on the standard port; omit public_port (only tcp mappings take one)", req.Scheme))
		}
	case proto.SchemeTCP:
		if req.Host != "" {
			return req, problem.InvalidField("host", fmt.Errorf("tcp mappings are addressed by public_port, not by host; omit host"))
		}
		switch {
		case req.Private && req.PublicPort != 0:
			return req, problem.InvalidField("public_port", fmt.Errorf("a private mapping is never public; omit public_port"))
		case req.Private:
		case req.PublicPort == 0:
			return req, problem.InvalidField("public_port", fmt.Errorf("tcp mappings need a public_port in this home's range %s", tcpPorts))
		case proto.ValidatePort(req.PublicPort) != nil:
			return req, problem.InvalidField("public_port", proto.ValidatePort(req.PublicPort))
		case tcpPorts.Size() <= 0 || !tcpPorts.Contains(req.PublicPort):
			return req, problem.InvalidField("public_port", fmt.Errorf("public port %d is not in this home's range %s", req.PublicPort, tcpPorts))
		}
	}
	return req, nil
}

// Create validates req for home h and stores the mapping with the lowest
// free tunnel port of h's block. A public http or https request without a
// host gets the first free name of h under the shared domain.
func (s *Service) Create(ctx context.Context, h store.Home, req proto.MappingRequest) (store.Mapping, error) {
	req, err := Check(req, s.layout.TCPPorts(h.Slot), s.domains.SharedDomain())
	if err != nil {
		return store.Mapping{}, err
	}
	shared := false // a name under the shared domain: no base domain needed
	if req.Host != "" {
		if shared, err = s.domains.SharedHost("host", req.Host, h.Slug); err != nil {
			return store.Mapping{}, err
		}
	}
	if req.Host != "" && !shared {
		// Even under the home's own base domain: the operator may reserve a
		// name there, and base domains stored before a name was reserved stay.
		if err := s.domains.Ownable("host", req.Host); err != nil {
			return store.Mapping{}, err
		}
	}
	m := store.Mapping{HomeID: h.ID, Scheme: req.Scheme, Private: req.Private, ProxyProtocol: req.ProxyProtocol == nil || *req.ProxyProtocol}
	if req.Host != "" {
		m.Host = &req.Host
	}
	if req.Name != "" {
		m.Name = &req.Name
	}
	if req.PublicPort != 0 {
		m.PublicPort = &req.PublicPort
	}
	err = s.db.Tx(ctx, func(tx *gorm.DB) error { return s.create(ctx, tx, h, &m, shared) })
	if store.IsDuplicate(err) {
		return store.Mapping{}, problem.New(problem.Conflict, "a parallel request took this name, host or port at the same moment; try again")
	}
	if err != nil {
		return store.Mapping{}, err
	}
	s.changed([]store.Mapping{m}, nil)
	return m, nil
}

func (s *Service) create(ctx context.Context, tx *gorm.DB, h store.Home, m *store.Mapping, shared bool) error {
	if err := store.Guard(tx, store.GuardMappings(h.ID)); err != nil { // the quota and the ports hold on any engine
		return err
	}
	if m.Host == nil && (m.Scheme == proto.SchemeHTTP || m.Scheme == proto.SchemeHTTPS) {
		host, err := s.sharedName(tx, h, m.Scheme)
		if err != nil {
			return err
		}
		m.Host, shared = &host, true
	}
	if m.Host != nil && !shared {
		base, err := s.domains.Covering(ctx, tx, h.ID, *m.Host)
		if err != nil {
			return err
		}
		if base == "" {
			return &problem.Error{Kind: problem.Forbidden, Field: "host", Message: fmt.Sprintf("%s is not under any base domain of this home; register its domain first (POST .../base-domains)", *m.Host)}
		}
	}
	if m.Name != nil {
		var n int64
		if err := tx.Model(&store.Mapping{}).Where("home_id = ? AND name = ?", h.ID, *m.Name).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return &problem.Error{Kind: problem.Conflict, Field: "name", Message: fmt.Sprintf("home %s already has a mapping named %s", h.Slug, *m.Name)}
		}
	}
	if m.Host != nil {
		var n int64
		if err := tx.Model(&store.Mapping{}).Where("scheme = ? AND host = ?", m.Scheme, *m.Host).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return &problem.Error{Kind: problem.Conflict, Field: "host", Message: fmt.Sprintf("%s://%s is already mapped", m.Scheme, *m.Host)}
		}
	}
	if m.PublicPort != nil {
		var n int64
		if err := tx.Model(&store.Mapping{}).Where("public_port = ?", *m.PublicPort).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return &problem.Error{Kind: problem.Conflict, Field: "public_port", Message: fmt.Sprintf("public port %d is already mapped", *m.PublicPort)}
		}
	}
	var used []int
	if err := tx.Model(&store.Mapping{}).Where("home_id = ?", h.ID).Pluck("tunnel_port", &used).Error; err != nil {
		return err
	}
	if len(used) >= s.perHome {
		return problem.New(problem.Quota, "this home already has %d mappings, the most allowed; delete one first", len(used))
	}
	block := s.layout.TunnelPorts(h.Slot)
	port, ok := homes.LowestFree(used, block.First, block.Last)
	if !ok {
		return problem.New(problem.Quota, "all %d tunnel ports of this home are in use; delete a mapping first", block.Size())
	}
	m.TunnelPort = port
	proxy := m.ProxyProtocol
	if err := tx.Create(m).Error; err != nil {
		return err
	}
	if !proxy {
		// Create wrote the column's default (true) in place of the false bool.
		m.ProxyProtocol = false
		if err := tx.Model(&store.Mapping{}).Where("id = ?", m.ID).Update("proxy_protocol", false).Error; err != nil {
			return err
		}
	}
	return audit.Record(tx, mappingEntry("mapping.create", h, *m))
}

// mappingEntry is the audit record of a change to m, a mapping of h.
func mappingEntry(kind string, h store.Home, m store.Mapping) audit.Entry {
	facts := map[string]any{"id": m.ID, "scheme": m.Scheme, "tunnel_port": m.TunnelPort, "private": m.Private, "proxy_protocol": m.ProxyProtocol}
	target := fmt.Sprintf("mapping %d: %s", m.ID, m.Scheme)
	if m.Name != nil {
		facts["name"] = *m.Name
		target = fmt.Sprintf("mapping %d (%s): %s", m.ID, *m.Name, m.Scheme)
	}
	if m.Host != nil {
		facts["host"] = *m.Host
		target += "://" + *m.Host
	}
	if m.PublicPort != nil {
		facts["public_port"] = *m.PublicPort
		target += fmt.Sprintf(" port %d", *m.PublicPort)
	}
	e := audit.Entry{Kind: kind, Home: h.Slug, HomeID: h.ID, OwnerID: h.UserID, Target: target}
	if kind == "mapping.delete" {
		e.Before = facts
	} else {
		e.After = facts
	}
	return e
}

// sharedName picks the first of h's names under the shared domain that no
// mapping of scheme uses: SLUG.SHARED, then 2-SLUG.SHARED, 3-SLUG.SHARED...
// Only h may hold them and it has at most perHome mappings, so one of the
// first perHome+1 is free; the caller holds h's guard.
func (s *Service) sharedName(tx *gorm.DB, h store.Home, scheme string) (string, error) {
	shared := s.domains.SharedDomain()
	names := make([]string, 0, s.perHome+1)
	for i := 1; i <= s.perHome+1; i++ {
		label := ""
		if i > 1 {
			label = strconv.Itoa(i)
		}
		names = append(names, proto.SharedName(label, h.Slug, shared))
	}
	var taken []string
	if err := tx.Model(&store.Mapping{}).Where("scheme = ? AND host IN ?", scheme, names).Pluck("host", &taken).Error; err != nil {
		return "", err
	}
	for _, n := range names {
		if !slices.Contains(taken, n) {
			return n, nil
		}
	}
	return "", problem.New(problem.Quota, "every %s name this home may get under %s is in use; delete a mapping first", scheme, shared)
}

// List returns a home's mappings.
func (s *Service) List(ctx context.Context, homeID uint64) ([]store.Mapping, error) {
	var ms []store.Mapping
	err := s.db.WithContext(ctx).Where("home_id = ?", homeID).Order("id").Find(&ms).Error
	return ms, err
}

// ListAll returns every mapping with its home (admin use).
func (s *Service) ListAll(ctx context.Context) ([]store.Mapping, error) {
	var ms []store.Mapping
	err := s.db.WithContext(ctx).Preload("Home").Order("id").Find(&ms).Error
	return ms, err
}

// Delete removes a mapping of home h; another home's mapping is not found.
func (s *Service) Delete(ctx context.Context, h store.Home, id uint64) error {
	var m store.Mapping
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("id = ? AND home_id = ?", id, h.ID).Take(&m).Error; err != nil {
			if store.IsNotFound(err) {
				return problem.New(problem.NotFound, "home %s has no mapping %d", h.Slug, id)
			}
			return err
		}
		if err := tx.Delete(&m).Error; err != nil {
			return err
		}
		return audit.Record(tx, mappingEntry("mapping.delete", h, m))
	})
	if err != nil {
		return err
	}
	s.changed(nil, []store.Mapping{m})
	return nil
}

// ToProto converts a mapping for the API, with its live state.
func (s *Service) ToProto(m store.Mapping) proto.Mapping {
	return proto.Mapping{
		ID: m.ID, Name: m.MappingName(), Scheme: m.Scheme, Host: m.HostName(), PublicPort: m.Port(),
		TunnelPort: m.TunnelPort, Private: m.Private, ProxyProtocol: m.ProxyProtocol, State: s.live(m), CreatedAt: m.CreatedAt,
	}
}

// PublicOnPort reports whether home's tunnel port serves a public mapping:
// one whose connections HAProxy opens and speaks first on.
func (s *Service) PublicOnPort(ctx context.Context, homeID uint64, port int) bool {
	var n int64
	err := s.db.WithContext(ctx).Model(&store.Mapping{}).
		Where("home_id = ? AND tunnel_port = ? AND private = ?", homeID, port, false).
		Count(&n).Error
	return err == nil && n > 0
}

// PrivateForUser reports whether tunnel port belongs to a private mapping
// of a home owned by userID: the only targets `home connect` may reach.
func (s *Service) PrivateForUser(ctx context.Context, userID uint64, port int) bool {
	var n int64
	err := s.db.WithContext(ctx).Model(&store.Mapping{}).
		Joins("JOIN homes ON homes.id = mappings.home_id").
		Where("mappings.tunnel_port = ? AND mappings.private = ? AND homes.user_id = ?", port, true, userID).
		Count(&n).Error
	return err == nil && n > 0
}
