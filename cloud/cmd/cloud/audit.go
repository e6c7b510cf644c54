package main

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// followEvery is how often `cloud audit --follow` asks for new records.
const followEvery = time.Second

func auditCmd() *cobra.Command {
	var data string
	var follow, asJSON bool
	q := map[string]*string{}
	c := &cobra.Command{
		Use:   "audit [--follow] [--json] [--actor NAME] [--home SLUG] [--kind KIND] [--since T] [--until T]",
		Short: "Show the audit log: who changed what, when, from where (oldest first)",
		Long: `Show the audit log: who changed what, when, from where, oldest first.

Times are RFC 3339, a date (2026-01-02) or an age (90m, 36h, 7d). A kind is
exact (mapping.create) or a family (mapping). --follow prints new records as
they are written until interrupted; --json prints one JSON object a line.`,
		Example: `  cloud audit --home k3x9a7qp --kind mapping --since 7d
  cloud audit --follow --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := audit.ParseFilter(func(k string) string { return *q[k] }, time.Now())
			if err != nil {
				return err
			}
			db, err := openStore(cmd, data)
			if err != nil {
				return err
			}
			defer db.Close()
			p := audit.Printer{W: cmd.OutOrStdout(), JSON: asJSON}
			rs, next, err := audit.Query(cmd.Context(), db, f)
			if err != nil {
				return err
			}
			slices.Reverse(rs) // oldest first, as a log reads
			if err := p.Print(protos(rs)); err != nil {
				return err
			}
			if !follow {
				if next != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "older records: add --cursor %s\n", next)
				}
				return nil
			}
			if len(rs) > 0 {
				f.After = rs[len(rs)-1].ID
			} else if f.After, err = lastID(db); err != nil {
				return err
			}
			f.Cursor, f.Limit = "", audit.MaxLimit
			t := time.NewTicker(followEvery)
			defer t.Stop()
			for {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-t.C:
				}
				rs, _, err := audit.Query(cmd.Context(), db, f)
				if err != nil {
					if cmd.Context().Err() != nil {
						return nil
					}
					return err
				}
				if len(rs) > 0 {
					f.After = rs[len(rs)-1].ID
					if err := p.Print(protos(rs)); err != nil {
						return err
					}
				}
			}
		},
	}
	c.Flags().StringVar(&data, "data", envOr("CLOUD_DATA", "./cloud-data"), "state directory of the cloud")
	c.Flags().String("db", os.Getenv("CLOUD_DB"), "the cloud's database when not DATA/cloud.db: a SQLite file or postgres://USER@HOST/DATABASE (as `cloud serve --db`)")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new records as they are written")
	c.Flags().BoolVar(&asJSON, "json", false, "one JSON object a line")
	for _, k := range []struct{ name, help string }{
		{"actor", "only records of this actor (username, home slug, or the CLI's OS user)"},
		{"home", "only records about this home (slug)"},
		{"kind", "only this kind (mapping.create) or family (mapping)"},
		{"since", "only records at or after this time or age"},
		{"until", "only records before this time or age"},
		{"cursor", "continue an earlier listing with the cursor it printed"},
		{"limit", "at most this many records (default 100, at most 1000)"},
	} {
		q[k.name] = c.Flags().String(k.name, "", k.help)
	}
	return c
}

// lastID is the newest record's ID, 0 when there is none: --follow starts
// after it.
func lastID(db *store.DB) (uint64, error) {
	var ids []uint64
	err := db.Model(&store.AuditRecord{}).Order("id DESC").Limit(1).Pluck("id", &ids).Error
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	return ids[0], nil
}

func protos(rs []store.AuditRecord) []proto.AuditRecord {
	out := make([]proto.AuditRecord, 0, len(rs))
	for _, r := range rs {
		out = append(out, audit.ToProto(r))
	}
	return out
}
