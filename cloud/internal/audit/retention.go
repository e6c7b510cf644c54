package audit

import (
	"context"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"homeport.dev/cloud/internal/store"
)

// DefaultRetention is --audit-retention's default: a year.
const DefaultRetention = 365 * 24 * time.Hour

// pruneEvery is how often Keep prunes; records a little older than the
// retention do no harm.
const pruneEvery = time.Hour

// Prune deletes the records older than before and, when it deleted any,
// records that it did (as the context's actor). It is the only delete of
// audit records: hooks are skipped, as store.AuditRecord refuses others.
func Prune(ctx context.Context, db *store.DB, before time.Time) (int64, error) {
	var n int64
	err := db.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Session(&gorm.Session{SkipHooks: true}).Where("at < ?", before.UTC()).Delete(&store.AuditRecord{})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		n = res.RowsAffected
		return Record(tx, Entry{Kind: "audit.prune", Target: "records before " + before.UTC().Format(time.RFC3339),
			After: map[string]any{"deleted": n}})
	})
	return n, err
}

// Keep prunes records older than retention now and then every hour until
// ctx ends, as the system; retention 0 keeps every record.
func Keep(ctx context.Context, db *store.DB, retention time.Duration, log *slog.Logger) {
	if retention <= 0 {
		return
	}
	ctx = With(ctx, System)
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := Prune(qctx, db, time.Now().Add(-retention))
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("audit log: pruning old records failed; retrying in an hour", "err", err)
		case n > 0:
			log.Info("audit log: pruned old records", "records", n, "retention", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
