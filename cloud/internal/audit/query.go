package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// Page sizes of a query.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Filter selects audit records. Zero fields select everything.
type Filter struct {
	Actor string // the actor's name, exactly
	Home  string // the home's slug, exactly
	// Kind is a record kind ("mapping.create") or a family of them, with
	// or without its dot ("mapping", "mapping.").
	Kind         string
	Since, Until time.Time // Since <= at < Until
	OwnerID      uint64    // only records about this account (a user's own log)
	// Cursor continues a listing: only records older than the one it
	// names (AuditPage.Next of the previous page).
	Cursor string
	// After selects records newer than this ID, oldest first (`--follow`).
	After uint64
	Limit int // DefaultLimit when 0
}

// Query returns the records f selects, newest first (oldest first with
// After), and the cursor of the next page ("" after the last one).
func Query(ctx context.Context, db *store.DB, f Filter) ([]store.AuditRecord, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > MaxLimit {
		return nil, "", problem.InvalidField("limit", fmt.Errorf("at most %d records per page", MaxLimit))
	}
	q := db.WithContext(ctx).Model(&store.AuditRecord{})
	if f.Actor != "" {
		q = q.Where("actor = ?", f.Actor)
	}
	if f.Home != "" {
		q = q.Where("home = ?", f.Home)
	}
	if k := f.Kind; k != "" {
		if family, ok := strings.CutSuffix(k, "."); ok || !strings.Contains(k, ".") {
			// Kinds are lower-case words and dots: no LIKE wildcards.
			q = q.Where("kind = ? OR kind LIKE ?", family, family+".%")
		} else {
			q = q.Where("kind = ?", k)
		}
	}
	if !f.Since.IsZero() {
		q = q.Where("at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		q = q.Where("at < ?", f.Until.UTC())
	}
	if f.OwnerID != 0 {
		q = q.Where("owner_id = ?", f.OwnerID)
	}
	order := "id DESC"
	if f.After != 0 {
		q, order = q.Where("id > ?", f.After), "id"
	}
	if f.Cursor != "" {
		id, err := strconv.ParseUint(f.Cursor, 10, 64)
		if err != nil || id == 0 {
			return nil, "", problem.InvalidField("cursor", fmt.Errorf("not a cursor this cloud gave: pass the previous page's next value"))
		}
		q = q.Where("id < ?", id)
	}
	var rs []store.AuditRecord
	if err := q.Order(order).Limit(limit + 1).Find(&rs).Error; err != nil {
		return nil, "", err
	}
	next := ""
	if len(rs) > limit {
		rs = rs[:limit]
		if f.After == 0 {
			next = strconv.FormatUint(rs[limit-1].ID, 10)
		}
	}
	return rs, next, nil
}

// validKind reports whether k can be a record kind or family of kinds.
func validKind(k string) bool {
	if len(k) > 48 {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

// ParseFilter reads a filter from query values (actor, home, kind, since,
// until, cursor, limit), as the API, the web page and the CLI take them.
// Times are RFC 3339, a date (2026-01-02, UTC), or an age: "90m", "36h",
// "7d" mean that long ago.
func ParseFilter(get func(string) string, now time.Time) (Filter, error) {
	f := Filter{Actor: strings.TrimSpace(get("actor")), Home: strings.TrimSpace(get("home")), Kind: strings.TrimSpace(get("kind")), Cursor: get("cursor")}
	if len(f.Actor) > 64 {
		return f, problem.InvalidField("actor", fmt.Errorf("a name is at most 64 characters"))
	}
	if len(f.Home) > 32 {
		return f, problem.InvalidField("home", fmt.Errorf("a home's slug is at most 32 characters"))
	}
	if !validKind(f.Kind) {
		return f, problem.InvalidField("kind", fmt.Errorf("a kind is lower-case words and dots, e.g. mapping.create or mapping"))
	}
	var err error
	if f.Since, err = ParseTime(get("since"), now); err != nil {
		return f, problem.InvalidField("since", err)
	}
	if f.Until, err = ParseTime(get("until"), now); err != nil {
		return f, problem.InvalidField("until", err)
	}
	if v := get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > MaxLimit {
			return f, problem.InvalidField("limit", fmt.Errorf("a number from 1 to %d", MaxLimit))
		}
	}
	return f, nil
}

// ParseTime reads a point in time: RFC 3339, a date (UTC midnight), or an
// age before now ("90m", "36h", "7d"). "" is the zero time.
func ParseTime(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if d, err := ParseAge(v); err == nil && d > 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%s is not a time: use RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or an age (90m, 36h, 7d)", proto.Printable(v))
}

// ParseAge reads a duration that may also be given in days ("365d").
func ParseAge(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("%s: use a whole number of days (e.g. 365d), or a duration like 36h", proto.Printable(v))
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s: use a duration like 36h or a number of days like 365d", proto.Printable(v))
	}
	return d, nil
}

// ToProto converts a record for the API.
func ToProto(r store.AuditRecord) proto.AuditRecord {
	out := proto.AuditRecord{ID: r.ID, At: r.At, ActorKind: r.ActorKind, Actor: r.Actor, Addr: r.Addr, Kind: r.Kind, Home: r.Home, Target: r.Target}
	if r.Before != "" {
		out.Before = json.RawMessage(r.Before)
	}
	if r.After != "" {
		out.After = json.RawMessage(r.After)
	}
	return out
}
