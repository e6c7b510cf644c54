// Package check owns `cloud check`: the preflight an operator runs before
// (or while) serving — file modes of secrets, a runtime socket that is never
// reachable over the network, and a configuration HAProxy accepts.
package check

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/domains"
	"homeport.dev/cloud/internal/haproxy"
	"homeport.dev/cloud/internal/store"
)

// Finding is one problem, with what to do about it.
type Finding struct {
	What string
	Fix  string
}

// networkSocket matches an HAProxy stats socket bound to an IP address.
var networkSocket = regexp.MustCompile(`(?m)^\s*stats\s+socket\s+(ipv4@|ipv6@|\[|\d+\.\d+\.\d+\.\d+:|:)`)

// Run inspects the state of cfg and returns every problem found.
func Run(ctx context.Context, cfg config.Config) []Finding {
	var out []Finding
	add := func(what, fix string) { out = append(out, Finding{what, fix}) }
	mode := func(path string, max fs.FileMode, optional bool) {
		st, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) && optional {
			return
		}
		if err != nil {
			add(fmt.Sprintf("%s: %v", path, err), "start `cloud serve` once to create it")
			return
		}
		if st.Mode().Perm()&^max != 0 {
			add(fmt.Sprintf("%s has mode %o, more open than %o", path, st.Mode().Perm(), max), fmt.Sprintf("chmod %o %s", max, path))
		}
	}
	mode(cfg.Data, 0o750, false)
	pg := store.IsPostgres(cfg.DBPath()) // a server's database: no file here
	if !pg {
		mode(cfg.DBPath(), 0o600, false)
	}
	mode(cfg.HostKeyPath(), 0o600, false)
	mode(cfg.StorageDir(), 0o700, true)
	out = append(out, clearText(cfg)...)
	if _, err := os.Stat(cfg.DBPath()); err == nil || pg {
		out = append(out, names(ctx, cfg)...)
	}
	if cfg.HAProxy == config.HAProxyOff {
		return out
	}
	mode(cfg.HAProxySocketPath(), 0o660, cfg.HAProxy == config.HAProxyManaged)
	if st, err := os.Stat(cfg.HAProxySocketPath()); err == nil && st.Mode()&fs.ModeSocket == 0 {
		add(cfg.HAProxySocketPath()+" is not a unix socket", "point --haproxy-socket at HAProxy's `stats socket` path")
	}
	if cfg.HAProxy == config.HAProxyManaged {
		path := filepath.Join(cfg.HAProxyDir(), "haproxy.cfg")
		b, err := os.ReadFile(path)
		if err != nil {
			add(fmt.Sprintf("%s: %v", path, err), "start `cloud serve` once to render it")
			return out
		}
		if networkSocket.Match(b) {
			add(path+" exposes the runtime API on a network address", "use only a unix socket (stats socket /path mode 600 level admin)")
		}
		if err := haproxy.CheckConfig(ctx, "haproxy", path); err != nil {
			add(fmt.Sprintf("HAProxy rejects %s: %v", path, err), "fix the flags it was rendered from and restart `cloud serve`")
		}
	}
	for _, m := range haproxy.Maps() {
		p := haproxy.MapPath(cfg.HAProxyMapDir(), m)
		if _, err := haproxy.ReadMap(cfg.HAProxyMapDir(), m); err != nil {
			add(fmt.Sprintf("map file %s: %v", p, err), "run `cloud reconcile` to rewrite the map files from the database")
		}
	}
	return out
}

// names reports stored base domains and mapping hosts that break the naming
// rules (IP literals, the cloud's own names, --reserved-domains): rows made
// before a rule existed, which the cloud keeps but must not hide.
func names(ctx context.Context, cfg config.Config) []Finding {
	// Opened as it is: no migration, no chmod (store.Open's), since a check
	// must not change what it checks. A database without tables holds no names.
	dialector := sqlite.Open("file:" + cfg.DBPath() + "?_busy_timeout=5000")
	if store.IsPostgres(cfg.DBPath()) {
		dialector = postgres.Open(cfg.DBPath())
	}
	g, err := gorm.Open(dialector, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return []Finding{{What: fmt.Sprintf("%s: %v", store.Redacted(cfg.DBPath()), err), Fix: "check the file and its permissions, or the database server and --db"}}
	}
	db := &store.DB{DB: g.WithContext(ctx)}
	defer db.Close()
	if !db.Migrator().HasTable(&store.BaseDomain{}) {
		return nil
	}
	return Names(ctx, domains.New(db, domains.NewReserved(cfg.PublicHost, cfg.APIHost, cfg.SharedDomain, cfg.ReservedDomains), cfg.DomainsPerHome))
}

// Names turns every stored name that breaks a naming rule into a finding.
func Names(ctx context.Context, ds *domains.Service) []Finding {
	vs, err := ds.Violations(ctx)
	if err != nil {
		return []Finding{{What: fmt.Sprintf("cannot list the stored names: %v", err), Fix: "check the database"}}
	}
	out := make([]Finding, 0, len(vs))
	for _, v := range vs {
		out = append(out, Finding{
			What: v.String(),
			Fix:  fmt.Sprintf("ask the owner of home %s to delete it (mappings first, then the base domain), or release the home: DELETE /api/v1/admin/homes/%s", v.Home, v.Home),
		})
	}
	return out
}
