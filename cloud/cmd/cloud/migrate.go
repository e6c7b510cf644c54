package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"homeport.dev/cloud/internal/store"
	"homeport.dev/cloud/internal/store/migrations"
)

// migrateCmd shows and applies the database's versioned migrations. `cloud
// serve` applies pending ones itself at start; this is for an operator who
// wants to see or do it first (before starting several nodes, say).
func migrateCmd() *cobra.Command {
	var data, db string
	c := &cobra.Command{
		Use:   "migrate [status|up]",
		Short: "Show (status, the default) or apply (up) the database's schema migrations",
		Long: `Show (status, the default) or apply (up) the database's schema migrations.

cloud serve applies pending migrations at start (on PostgreSQL one node at a
time) and refuses a database a newer cloud migrated. A database made before
versioned migrations is adopted: its schema is recorded as the baseline.`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"status", "up"},
	}
	c.Flags().StringVar(&data, "data", envOr("CLOUD_DATA", "./cloud-data"), "state directory of the cloud (its cloud.db unless --db)")
	c.Flags().StringVar(&db, "db", envOr("CLOUD_DB", ""), "the database: a SQLite file or postgres://... (default DATA/cloud.db)")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		verb := "status"
		if len(args) == 1 {
			verb = args[0]
		}
		if verb != "status" && verb != "up" {
			return fmt.Errorf("unknown verb %q: use status or up", verb)
		}
		dsn := db
		if dsn == "" {
			dsn = filepath.Join(data, "cloud.db")
		}
		s, err := store.OpenUnmigrated(cmd.Context(), dsn)
		if err != nil {
			return err
		}
		defer s.Close()
		out := cmd.OutOrStdout()
		if verb == "up" {
			done, err := migrations.Up(cmd.Context(), s.DB, logger("warn"))
			for _, d := range done {
				fmt.Fprintf(out, "applied %05d %s\n", d.Version, d.Name)
			}
			if err != nil {
				return err
			}
		}
		st, err := migrations.Read(cmd.Context(), s.DB)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "VERSION\tNAME\tAPPLIED")
		for _, step := range st.Steps {
			at := "pending"
			if !step.AppliedAt.IsZero() {
				at = step.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(w, "%05d\t%s\t%s\n", step.Version, step.Name, at)
		}
		w.Flush()
		switch {
		case st.Current > st.Latest:
			return fmt.Errorf("%w: it is at version %d, this binary knows up to %d", migrations.ErrNewer, st.Current, st.Latest)
		case st.Pending():
			fmt.Fprintf(out, "database %s at version %d of %d: run `cloud migrate up` (or start cloud serve, which migrates)\n", store.Redacted(dsn), st.Current, st.Latest)
		default:
			fmt.Fprintf(out, "database %s is up to date (version %d)\n", store.Redacted(dsn), st.Current)
		}
		return nil
	}
	return c
}
