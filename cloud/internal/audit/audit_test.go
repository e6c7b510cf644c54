package audit_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/cloud/internal/store/pgtest"
	"homeport.dev/proto"
)

var pg = pgtest.New()

func TestMain(m *testing.M) { pg.Main(m) }

// engines runs fn on a fresh SQLite and a fresh PostgreSQL database.
func engines(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	for _, e := range pg.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			db, err := store.Open(context.Background(), e.DSN(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			fn(t, db)
		})
	}
}

func kinds(rs []store.AuditRecord) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Kind)
	}
	return out
}

// TestRecordFollowsItsTransaction: a record is written with the change and
// names the context's actor; a change that rolls back leaves none.
func TestRecordFollowsItsTransaction(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := audit.With(context.Background(), audit.Actor{Kind: proto.ActorUser, Name: "alice", Addr: "192.0.2.7"})
		err := db.Tx(ctx, func(tx *gorm.DB) error {
			return audit.Record(tx, audit.Entry{Kind: "mapping.create", Home: "abcdefgh", Target: "https://app.example.com", After: map[string]any{"port": 20000}})
		})
		if err != nil {
			t.Fatal(err)
		}
		failed := errors.New("the change failed")
		err = db.Tx(ctx, func(tx *gorm.DB) error {
			if err := audit.Record(tx, audit.Entry{Kind: "mapping.delete", Home: "abcdefgh"}); err != nil {
				return err
			}
			return failed
		})
		if !errors.Is(err, failed) {
			t.Fatal(err)
		}
		rs, next, err := audit.Query(context.Background(), db, audit.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || next != "" {
			t.Fatalf("records %v, want the one committed", kinds(rs))
		}
		r := rs[0]
		if r.Kind != "mapping.create" || r.ActorKind != proto.ActorUser || r.Actor != "alice" || r.Addr != "192.0.2.7" ||
			r.Home != "abcdefgh" || r.After != `{"port":20000}` || r.Before != "" || time.Since(r.At) > time.Minute {
			t.Errorf("record %+v", r)
		}
		// Without an actor in the context, the cloud itself acts.
		if err := audit.Write(context.Background(), db, audit.Entry{Kind: "ssh.refused"}); err != nil {
			t.Fatal(err)
		}
		rs, _, _ = audit.Query(context.Background(), db, audit.Filter{Kind: "ssh"})
		if len(rs) != 1 || rs[0].ActorKind != proto.ActorSystem {
			t.Errorf("records without an actor: %+v", rs)
		}
	})
}

// TestRecordsAreAppendOnly: the application cannot update or delete a
// record; only the retention prune deletes, and it records that it did.
func TestRecordsAreAppendOnly(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := audit.With(context.Background(), audit.CLI())
		for _, k := range []string{"user.create", "user.approve"} {
			if err := audit.Write(ctx, db, audit.Entry{Kind: k, Target: "alice"}); err != nil {
				t.Fatal(err)
			}
		}
		var r store.AuditRecord
		if err := db.First(&r).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Model(&r).Update("actor", "someone else").Error; !errors.Is(err, store.ErrAppendOnly) {
			t.Errorf("update of a record: %v, want refused", err)
		}
		if err := db.Delete(&r).Error; !errors.Is(err, store.ErrAppendOnly) {
			t.Errorf("delete of a record: %v, want refused", err)
		}
		if err := db.Where("kind = ?", "user.create").Delete(&store.AuditRecord{}).Error; !errors.Is(err, store.ErrAppendOnly) {
			t.Errorf("delete of records: %v, want refused", err)
		}
		// Make the first record old, as time would (hooks skipped, as only a test may).
		old := time.Now().Add(-48 * time.Hour)
		if err := db.Session(&gorm.Session{SkipHooks: true}).Model(&r).Update("at", old).Error; err != nil {
			t.Fatal(err)
		}
		n, err := audit.Prune(audit.With(context.Background(), audit.System), db, time.Now().Add(-24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("prune: %d, %v; want 1 record", n, err)
		}
		rs, _, _ := audit.Query(context.Background(), db, audit.Filter{})
		if got := kinds(rs); !slices.Equal(got, []string{"audit.prune", "user.approve"}) {
			t.Errorf("after the prune: %v", got)
		}
		if n, err := audit.Prune(context.Background(), db, time.Now().Add(-24*time.Hour)); err != nil || n != 0 {
			t.Errorf("a second prune: %d, %v; want nothing", n, err)
		}
		rs, _, _ = audit.Query(context.Background(), db, audit.Filter{})
		if len(rs) != 2 {
			t.Errorf("a prune of nothing is recorded: %v", kinds(rs))
		}
	})
}

// TestEventsAreRateLimited: one record per key and interval, the next one
// counts what was left out; other keys are not held back.
func TestEventsAreRateLimited(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ev := audit.NewEvents(db, time.Hour, nil)
		home := audit.Actor{Kind: proto.ActorHome, Name: "abcdefgh", Addr: "192.0.2.7"}
		for range 50 {
			ev.Add(home, "ssh.refused 192.0.2.7", audit.Entry{Kind: "ssh.refused", After: map[string]any{"reason": "unknown key"}})
		}
		ev.Add(home, "ssh.connect abcdefgh", audit.Entry{Kind: "ssh.connect", Home: "abcdefgh"})
		rs, _, _ := audit.Query(context.Background(), db, audit.Filter{})
		if got := kinds(rs); !slices.Equal(got, []string{"ssh.connect", "ssh.refused"}) {
			t.Errorf("50 refusals and a connect wrote %v", got)
		}
	})
}

// TestParseFilter: the times and kinds the API, the page and the CLI take.
func TestParseFilter(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		q       map[string]string
		since   time.Time
		kind    string
		invalid string
	}{
		{q: map[string]string{"since": "7d"}, since: now.Add(-7 * 24 * time.Hour)},
		{q: map[string]string{"since": "90m"}, since: now.Add(-90 * time.Minute)},
		{q: map[string]string{"since": "2026-01-02"}, since: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{q: map[string]string{"since": "2026-01-02T03:04:05+01:00"}, since: time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC)},
		{q: map[string]string{"kind": "mapping"}, kind: "mapping"},
		{q: map[string]string{"since": "yesterday"}, invalid: "since"},
		{q: map[string]string{"until": "-3d"}, invalid: "until"},
		{q: map[string]string{"kind": "mapping%"}, invalid: "kind"},
		{q: map[string]string{"kind": "Mapping"}, invalid: "kind"},
		{q: map[string]string{"limit": "0"}, invalid: "limit"},
		{q: map[string]string{"limit": "1001"}, invalid: "limit"},
	} {
		f, err := audit.ParseFilter(func(k string) string { return c.q[k] }, now)
		if c.invalid != "" {
			if err == nil {
				t.Errorf("%v: accepted", c.q)
			}
			continue
		}
		if err != nil || !f.Since.Equal(c.since) || f.Kind != c.kind {
			t.Errorf("%v: %+v, %v", c.q, f, err)
		}
	}
	for v, want := range map[string]time.Duration{"365d": 365 * 24 * time.Hour, "0": 0, "36h": 36 * time.Hour} {
		if got, err := audit.ParseAge(v); err != nil || got != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
}
