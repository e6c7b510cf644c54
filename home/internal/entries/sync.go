package entries

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/store"
	"homeport.dev/proto"
)

// Cloud is what a sync needs of the cloud API.
type Cloud interface {
	Mappings(ctx context.Context, slug string) ([]proto.Mapping, error)
	CreateMapping(ctx context.Context, slug string, req proto.MappingRequest) (proto.Mapping, error)
	DeleteMapping(ctx context.Context, slug string, id uint64) error
}

var _ Cloud = (*cloudapi.Client)(nil)

// Change is one thing a sync did or failed to do.
type Change struct {
	Action string `json:"action"` // created, removed, kept, failed
	What   string `json:"what"`
	Error  string `json:"error,omitempty"`
}

// Report is the outcome of a sync; InSync is true only when nothing failed.
type Report struct {
	Changes []Change `json:"changes"`
	InSync  bool     `json:"in_sync"`
}

// Options narrow a sync.
type Options struct {
	// Domain limits the sync to entries (and mappings) at or under it.
	Domain string
	// Disconnect removes the mappings instead of creating them, and marks
	// the entries disconnected: later syncs leave them unmapped.
	Disconnect bool
	// Connect maps entries an earlier Disconnect left unmapped again (the
	// user's sync-tunnels, or Connect all); without it a sync (the
	// running agent's own) leaves them as they are.
	Connect bool
}

func (o Options) covers(host string) bool {
	return o.Domain == "" || host == o.Domain || strings.HasSuffix(host, "."+o.Domain)
}

// checkDomain refuses a --domain filter that covers no entry and no
// mapping of the home: it would change nothing and say "in sync". The
// error lists the names there are.
func (o Options) checkDomain(es []store.Entry, ms []proto.Mapping) error {
	if o.Domain == "" {
		return nil
	}
	var names []string
	seen := map[string]bool{}
	for _, e := range es {
		if e.Host != "" && o.covers(e.Host) {
			return nil
		}
		if e.Host != "" && !seen[e.Host] {
			seen[e.Host] = true
			names = append(names, e.Host)
		}
	}
	for _, m := range ms {
		if m.Host != "" && o.covers(m.Host) {
			return nil
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("--domain %s matches no forward: this home has no forward with a host name (tcp and private forwards have none)", o.Domain)
	}
	slices.Sort(names)
	return fmt.Errorf("--domain %s matches no forward; the forwards' names are: %s", o.Domain, strings.Join(names, ", "))
}

// Sync makes the cloud's mappings of home slug match the enabled local
// entries: it creates what is missing, removes mappings no enabled entry
// wants, and records each entry's mapping and tunnel port. It is
// idempotent: a second run changes nothing. Syncs of one profile run one
// at a time (console retries, dashboard actions, reloads and the CLI), and
// a sync writes back only what it learned, never a whole entry it read
// before its network calls.
func Sync(ctx context.Context, cloud Cloud, slug string, db *store.DB, o Options) (Report, error) {
	unlock, err := db.LockSync(ctx)
	if err != nil {
		return Report{}, err
	}
	defer unlock()
	ms, err := cloud.Mappings(ctx, slug)
	if err != nil {
		return Report{}, err
	}
	es, err := db.Entries(ctx)
	if err != nil {
		return Report{}, err
	}
	o.Domain = strings.TrimSuffix(proto.NormalizeHostname(o.Domain), ".")
	if err := o.checkDomain(es, ms); err != nil {
		return Report{}, err
	}
	rep := Report{InSync: true}
	add := func(action, what string, err error) {
		c := Change{Action: action, What: what}
		if err != nil {
			c.Action, c.Error = "failed", err.Error()
			rep.InSync = false
		}
		rep.Changes = append(rep.Changes, c)
	}
	used := map[uint64]bool{}
	found := make([]*proto.Mapping, len(es))
	want := func(e store.Entry) bool {
		return o.covers(e.Host) && e.Enabled && !o.Disconnect && (!e.Disconnected || o.Connect)
	}
	claim := func(i int, ok func(proto.Mapping) bool) {
		for j := range ms {
			if found[i] == nil && !used[ms[j].ID] && ok(ms[j]) {
				found[i] = &ms[j]
				used[ms[j].ID] = true
			}
		}
	}
	for i, e := range es {
		if want(e) {
			claim(i, func(m proto.Mapping) bool { return matches(e, m) })
		}
	}
	// A cloud from before mapping names has none for private mappings: a
	// private entry whose mapping the cache does not know (a profile copied
	// without its cache) takes an unnamed private mapping no other entry
	// claimed, rather than a new one.
	for i, e := range es {
		if want(e) && e.Private {
			claim(i, func(m proto.Mapping) bool { return m.Private && m.Name == "" && m.Scheme == e.Scheme })
		}
	}
	for i := range es {
		e := &es[i]
		if !o.covers(e.Host) {
			continue
		}
		switch {
		case o.Disconnect:
			e.Disconnected = true
		case o.Connect:
			e.Disconnected = false
		}
		switch {
		case found[i] != nil:
			add("kept", e.Public(), nil)
			e.MappingID, e.TunnelPort, e.SyncError = found[i].ID, found[i].TunnelPort, ""
		case want(*e):
			m, err := cloud.CreateMapping(ctx, slug, Request(*e))
			add("created", e.Public(), err)
			if err != nil {
				e.SyncError = err.Error()
			} else {
				used[m.ID] = true
				e.MappingID, e.TunnelPort, e.SyncError = m.ID, m.TunnelPort, ""
			}
		default:
			e.MappingID, e.TunnelPort = 0, 0
		}
		a := config.Assigned{MappingID: e.MappingID, TunnelPort: e.TunnelPort, SyncError: e.SyncError, Disconnected: e.Disconnected}
		if err := db.SetSynced(ctx, e.Public(), a); err != nil {
			return rep, err
		}
	}
	for _, m := range ms {
		if used[m.ID] || !o.covers(m.Host) {
			continue
		}
		what := describe(m)
		add("removed", what, cloud.DeleteMapping(ctx, slug, m.ID))
	}
	return rep, nil
}

func describe(m proto.Mapping) string {
	switch {
	case m.Private && m.Name != "":
		return "private:" + m.Name
	case m.Scheme == proto.SchemeTCP && m.Private:
		return fmt.Sprintf("private mapping %d", m.ID)
	case m.Scheme == proto.SchemeTCP:
		return fmt.Sprintf("tcp:%d", m.PublicPort)
	}
	return m.Scheme + "://" + m.Host
}
