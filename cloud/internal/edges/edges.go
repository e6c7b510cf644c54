// Package edges lets several cloud nodes share one PostgreSQL database
// (`cloud serve --edge NAME`). Each edge node heartbeats its row in the
// edges table (its SSH endpoint, host key, public addresses and load); a
// claim goes to the live edge serving the fewest homes, an admin may move a
// home, and a home's API answer names its edge's SSH endpoint. A node
// without --edge is the single cloud of today: it registers nothing and
// serves every home (their edge is "").
package edges

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// Heartbeat is how often an edge rewrites its row; DownAfter is the silence
// after which the others count it down (five missed heartbeats: a slow
// database or a GC pause does not take an edge down).
const (
	Heartbeat = 2 * time.Second
	DownAfter = 10 * time.Second
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// ValidName checks an edge name: 1-32 lower-case letters, digits and
// inner dashes (it is shown in messages and used as a label).
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("edge name %q: use 1-32 lower-case letters, digits and inner dashes", name)
	}
	return nil
}

// Status is an edge as the admin sees it.
type Status struct {
	store.Edge
	Up    bool // heartbeat within DownAfter
	Homes int  // homes assigned to it
}

// Registry is this node's view of the edges.
type Registry struct {
	db   *store.DB
	self store.Edge // Name "" when this node is not an edge
	load func() int // connected homes, for the heartbeat
	log  *slog.Logger
	now  func() time.Time
}

// New returns the registry; self.Name is this node's --edge ("" for none),
// load counts its connected homes.
func New(db *store.DB, self store.Edge, load func() int, log *slog.Logger) *Registry {
	return &Registry{db: db, self: self, load: load, log: log, now: func() time.Time { return time.Now().UTC() }}
}

// Name is this node's edge name, "" when it is not an edge.
func (r *Registry) Name() string { return r.self.Name }

// Register writes this edge's row, with sshPort when the configuration
// left the port to the system (:0), and gives it the homes no edge serves
// (a cloud that ran as a single node before its first edge started). It
// does nothing on a node without --edge. Call it before Run.
func (r *Registry) Register(ctx context.Context, sshPort int) error {
	if r.self.Name == "" {
		return nil
	}
	if r.self.SSHPort == 0 {
		r.self.SSHPort = sshPort
	}
	now := r.now()
	e := r.self
	e.StartedAt, e.HeartbeatAt, e.Load = now, now, r.load()
	err := r.db.WithContext(ctx).Clauses(clause.OnConflict{UpdateAll: true}).Create(&e).Error
	if err != nil {
		return fmt.Errorf("register edge %s: %w", e.Name, err)
	}
	res := r.db.WithContext(ctx).Model(&store.Home{}).Where("edge = ?", "").Update("edge", e.Name)
	if res.Error != nil {
		return fmt.Errorf("edge %s: adopt the homes of no edge: %w", e.Name, res.Error)
	}
	if res.RowsAffected > 0 {
		r.log.Info("edge took the homes no edge served", "edge", e.Name, "homes", res.RowsAffected)
	}
	return nil
}

// Run heartbeats until ctx ends, then marks the edge down at once (a node
// that is killed is down after DownAfter).
func (r *Registry) Run(ctx context.Context) {
	if r.self.Name == "" {
		return
	}
	t := time.NewTicker(Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			r.db.WithContext(stop).Model(&store.Edge{}).Where("name = ?", r.self.Name).Update("heartbeat_at", time.Unix(0, 0).UTC())
			return
		case <-t.C:
		}
		beat, cancel := context.WithTimeout(ctx, Heartbeat)
		err := r.db.WithContext(beat).Model(&store.Edge{}).Where("name = ?", r.self.Name).
			Updates(map[string]any{"heartbeat_at": r.now(), "load": r.load()}).Error
		cancel()
		if err != nil && ctx.Err() == nil {
			r.log.Warn("edge heartbeat not written; the others count this edge down after "+DownAfter.String(), "edge", r.self.Name, "err", err)
		}
	}
}

// List returns every edge with its health and number of homes, by name.
func (r *Registry) List(ctx context.Context) ([]Status, error) {
	var es []store.Edge
	if err := r.db.WithContext(ctx).Order("name").Find(&es).Error; err != nil {
		return nil, err
	}
	counts, err := homesPerEdge(r.db.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(es))
	for _, e := range es {
		out = append(out, Status{Edge: e, Up: r.now().Sub(e.HeartbeatAt) <= DownAfter, Homes: counts[e.Name]})
	}
	return out, nil
}

func homesPerEdge(tx *gorm.DB) (map[string]int, error) {
	var rows []struct {
		Edge string
		N    int
	}
	if err := tx.Model(&store.Home{}).Select("edge, COUNT(*) AS n").Group("edge").Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Edge] = r.N
	}
	return out, nil
}

// Pick chooses the edge for a new home inside the claim's transaction: the
// live edge with the fewest homes (by name on a tie), or "" when no edge is
// live (a single cloud). The claim's guard makes two claims count in turn.
func (r *Registry) Pick(tx *gorm.DB) (string, error) {
	var live []string
	if err := tx.Model(&store.Edge{}).Where("heartbeat_at >= ?", r.now().Add(-DownAfter)).Order("name").Pluck("name", &live).Error; err != nil {
		return "", err
	}
	if len(live) == 0 {
		return "", nil
	}
	counts, err := homesPerEdge(tx)
	if err != nil {
		return "", err
	}
	best := live[0]
	for _, name := range live[1:] {
		if counts[name] < counts[best] {
			best = name
		}
	}
	return best, nil
}

// ErrNoEdge is a move to an edge that is not registered or not up.
var ErrNoEdge = errors.New("no such edge")

// Check refuses a move to an edge that is unknown or down.
func (r *Registry) Check(ctx context.Context, name string) error {
	var e store.Edge
	err := r.db.WithContext(ctx).Where("name = ?", name).Take(&e).Error
	switch {
	case store.IsNotFound(err):
		return fmt.Errorf("%w: %q is not a registered edge (GET /api/v1/admin/edges lists them)", ErrNoEdge, name)
	case err != nil:
		return err
	case r.now().Sub(e.HeartbeatAt) > DownAfter:
		return fmt.Errorf("%w: edge %s is down (no heartbeat since %s)", ErrNoEdge, name, e.HeartbeatAt.Format(time.RFC3339))
	}
	return nil
}

// Endpoint is the SSH endpoint of the edge that serves h: def (this node's
// own) for a home of no edge or when the edge's row is missing.
func (r *Registry) Endpoint(ctx context.Context, h store.Home, def proto.SSHEndpoint) proto.SSHEndpoint {
	def.User = h.Slug
	if h.Edge == "" {
		return def
	}
	var e store.Edge
	if err := r.db.WithContext(ctx).Where("name = ?", h.Edge).Take(&e).Error; err != nil {
		return def
	}
	return proto.SSHEndpoint{Host: e.SSHHost, Port: e.SSHPort, User: h.Slug, HostKey: e.HostKey}
}

// Where names an edge and its SSH address, for a refusal message.
func (r *Registry) Where(ctx context.Context, name string) string {
	var e store.Edge
	if err := r.db.WithContext(ctx).Where("name = ?", name).Take(&e).Error; err != nil {
		return "edge " + name
	}
	return fmt.Sprintf("edge %s (%s:%d)", name, e.SSHHost, e.SSHPort)
}
