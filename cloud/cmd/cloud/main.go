// Command cloud is homeport's public edge controller: REST API and web UI,
// SSH endpoint for homes, HAProxy routes and bandwidth limits.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/audit"
	"homeport.dev/cloud/internal/backup"
	"homeport.dev/cloud/internal/check"
	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/serve"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
	"homeport.dev/proto/sysmon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cloud:", err)
		os.Exit(1)
	}
}

func root() *cobra.Command {
	c := &cobra.Command{
		Use:           "cloud",
		Short:         "homeport's public edge: makes servers at home reachable through this machine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	c.AddCommand(serveCmd(), usersCmd(), reconcileCmd(), checkCmd(), backupCmd(), auditCmd(), migrateCmd())
	return c
}

func logger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func serveCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the cloud: REST API + web UI, SSH endpoint, HAProxy routes",
		Long: `Run the cloud: REST API + web UI, SSH endpoint, HAProxy routes.

Every flag can also be set as an environment variable CLOUD_<NAME> (dashes
as underscores, e.g. CLOUD_DATA) or as a key in cloud.yaml; flags win over
the environment, which wins over the file.

The cloud runs Go code on all processors but one (at least one), leaving
a processor to HAProxy and the kernel's network work; set the GOMAXPROCS
environment variable to choose. It starts over once, in place, with
GODEBUG=schedtrace=2147483647 added (less CPU per connection;
GODEBUG=schedtrace=0 keeps Go's default).`,
		Args: cobra.NoArgs,
	}
	load := config.Flags(c.Flags())
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		// Go's monitor thread kept from deep sleep (proto/sysmon): the
		// process runs again in place first, before it opens anything.
		sysmonErr := sysmon.KeepPolling()
		cfg, err := load()
		if err != nil {
			return err
		}
		log := logger(cfg.LogLevel)
		procs := serve.UseEdgeProcs()
		log.Info("processors for Go code: all but one, unless the GOMAXPROCS environment variable says", "gomaxprocs", procs, "cpus", runtime.NumCPU())
		if sysmonErr != nil {
			log.Warn("running with Go's default monitor thread, which costs CPU per connection", "err", sysmonErr)
		}
		app, err := serve.New(cmd.Context(), cfg, log)
		if err != nil {
			return err
		}
		defer app.Close()
		return app.Run(cmd.Context(), func(a serve.Addrs) {
			fmt.Fprintf(cmd.OutOrStdout(), "cloud ready: API and web UI on http://%s, SSH endpoint on %s, data in %s\n", a.API, a.SSH, cfg.Data)
			if a.TLS != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "cloud https: web UI and API on %s through HAProxy (the cloud's TLS listener: %s, certificate: %s)\n", app.PublicURL(), a.TLS, cfg.TLS.Mode)
			}
		})
	}
	return c
}

// openStore opens the cloud's database for a command: --db, else the data
// directory's cloud.db.
func openStore(cmd *cobra.Command, data string) (*store.DB, error) {
	dsn := filepath.Join(data, "cloud.db")
	if flag, _ := cmd.Flags().GetString("db"); flag != "" {
		dsn = flag
	}
	return store.Open(cmd.Context(), dsn)
}

// withAccounts opens the cloud's database (--db, else the data directory's)
// for an admin command.
func withAccounts(cmd *cobra.Command, data string, fn func(*account.Service) error) error {
	return withStore(cmd, data, func(_ *store.DB, s *account.Service) error { return fn(s) })
}

// withStore is withAccounts for a command that needs the database too.
func withStore(cmd *cobra.Command, data string, fn func(*store.DB, *account.Service) error) error {
	db, err := openStore(cmd, data)
	if err != nil {
		return err
	}
	defer db.Close()
	cmd.SetContext(audit.With(cmd.Context(), audit.CLI())) // the audit log names the CLI as the actor
	svc, err := account.New(db)
	if err != nil {
		return err
	}
	return fn(db, svc)
}

func usersCmd() *cobra.Command {
	var data string
	c := &cobra.Command{Use: "users", Short: "Manage accounts (create, approve, deactivate, list, invite, role, reset-password, delete)"}
	c.PersistentFlags().StringVar(&data, "data", envOr("CLOUD_DATA", "./cloud-data"), "state directory of the cloud")
	c.PersistentFlags().String("db", os.Getenv("CLOUD_DB"), "the cloud's database when not DATA/cloud.db: a SQLite file or postgres://USER@HOST/DATABASE (as `cloud serve --db`)")

	var email, role string
	var admin, approved bool
	create := &cobra.Command{
		Use:     "create NAME --email E [--admin | --role ROLE] [--approved]",
		Short:   "Create an account; the password is read from the first line of stdin",
		Example: `  echo 'correct horse battery' | cloud users create alice --email alice@example.com --admin --approved`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd.InOrStdin())
			if err != nil {
				return err
			}
			return withAccounts(cmd, data, func(s *account.Service) error {
				u, err := s.Create(cmd.Context(), account.NewUser{Username: args[0], Email: email, Password: pw, Admin: admin, Role: role, Active: approved || admin || role == proto.RoleAdmin})
				if err != nil {
					return err
				}
				state := "active"
				if !u.Active {
					state = "inactive: approve with `cloud users approve " + u.Username + "`"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created %s %s (%s)\n", u.Role, u.Username, state)
				return nil
			})
		},
	}
	create.Flags().StringVar(&email, "email", "", "email address (required)")
	create.Flags().BoolVar(&admin, "admin", false, "give the admin role (admins are created active)")
	create.Flags().BoolVar(&approved, "approved", false, "create the account active")
	create.Flags().StringVar(&role, "role", "", "the account's role: admin, operator, user (default) or viewer")
	_ = create.MarkFlagRequired("email")

	setActive := func(use, short string, active bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " NAME", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return withAccounts(cmd, data, func(s *account.Service) error {
					u, err := s.SetActive(cmd.Context(), args[0], active)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s is now %s\n", u.Username, map[bool]string{true: "active", false: "inactive"}[u.Active])
					return nil
				})
			},
		}
	}
	list := &cobra.Command{
		Use: "list", Short: "List accounts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAccounts(cmd, data, func(s *account.Service) error {
				users, err := s.List(cmd.Context())
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "USERNAME\tEMAIL\tROLE\tACTIVE\tCREATED")
				for _, u := range users {
					fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\n", u.Username, u.Email, u.Role, u.Active, u.CreatedAt.Format("2006-01-02"))
				}
				return w.Flush()
			})
		},
	}
	c.AddCommand(lifecycleCmds(&data)...)
	c.AddCommand(create, setActive("approve", "Approve (activate) an account", true),
		setActive("deactivate", "Deactivate an account: its homes go offline (a running cloud closes their connections and withdraws their routes within a second), its tokens and sessions stop working", false), list)
	return c
}

// lifecycleCmds are the verbs of the account lifecycle: invitations, roles,
// password resets, deletion (as the admin API and web UI offer them).
func lifecycleCmds(data *string) []*cobra.Command {
	var role, url string
	var valid time.Duration
	link := func(cmd *cobra.Command, path string) string {
		if url == "" {
			return "the cloud's web address followed by " + path
		}
		return strings.TrimRight(url, "/") + path
	}
	invite := &cobra.Command{
		Use:   "invite --role ROLE [--valid 72h] [--url https://cloud.example.com]",
		Short: "Make a single-use invitation link to an account with ROLE (shown once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAccounts(cmd, *data, func(s *account.Service) error {
				inv, err := s.CreateInvitation(cmd.Context(), account.CLI, role, valid)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "invitation for a new %s, valid until %s (shown once, works once):\n%s\n",
					inv.Role, inv.ExpiresAt.Format(time.RFC3339), link(cmd, account.InvitePath+inv.Token))
				return nil
			})
		},
	}
	invite.Flags().StringVar(&role, "role", proto.RoleUser, "the role of the account: admin, operator, user or viewer")
	invite.Flags().DurationVar(&valid, "valid", account.DefaultInvitationTTL, "how long the link works (1h .. 720h)")
	roleCmd := &cobra.Command{
		Use:   "role NAME ROLE",
		Short: "Change an account's role (admin, operator, user, viewer); the last active admin keeps theirs",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd, *data, func(s *account.Service) error {
				u, err := s.SetRole(cmd.Context(), account.CLI, args[0], args[1])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s is now %s\n", u.Username, u.Role)
				return nil
			})
		},
	}
	reset := &cobra.Command{
		Use:   "reset-password NAME [--url https://cloud.example.com]",
		Short: "Make a one-time password-reset link for an account (shown once; an earlier link stops working)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd, *data, func(s *account.Service) error {
				r, err := s.CreatePasswordReset(cmd.Context(), account.CLI, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "password reset for %s, valid until %s (shown once, works once; it ends their web sessions):\n%s\n",
					r.Username, r.ExpiresAt.Format(time.RFC3339), link(cmd, account.ResetPath+r.Token))
				return nil
			})
		},
	}
	for _, c := range []*cobra.Command{invite, reset} {
		c.Flags().StringVar(&url, "url", os.Getenv("CLOUD_URL"), "the cloud's web address, to print a whole link (env CLOUD_URL)")
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an account: its homes are released (a running cloud closes their connections and withdraws their routes within a second), its tokens and sessions end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, *data, func(db *store.DB, s *account.Service) error {
				// The homes' own release path; a running cloud sees the
				// deletion in the database and cleans its data plane.
				hs, err := homes.New(db, homes.Options{Layout: homes.DefaultLayout, HomesPerUser: 1})
				if err != nil {
					return err
				}
				if err := s.Delete(cmd.Context(), account.CLI, args[0], hs.Release); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s is deleted; their homes are released\n", args[0])
				return nil
			})
		},
	}
	return []*cobra.Command{invite, roleCmd, reset, del}
}

func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on stdin; pipe it in, e.g. echo 'a long passphrase' | cloud users create NAME --email E")
	}
	return pw, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func reconcileCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "reconcile",
		Short: "Rewrite the HAProxy map files from the database and repair HAProxy's live maps now",
		Long: `Rewrite the HAProxy map files from the database and repair HAProxy's live
maps now (a running cloud also does this at start and every
--reconcile-interval). Takes the same flags as serve.`,
		Args: cobra.NoArgs,
	}
	load := config.Flags(c.Flags())
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := load()
		if err != nil {
			return err
		}
		app, err := serve.New(cmd.Context(), cfg, logger("warn"))
		if err != nil {
			return err
		}
		defer app.Close()
		n, err := app.Routes.Full(cmd.Context())
		if err != nil {
			return fmt.Errorf("map files written, but HAProxy did not take the routes: %w", err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "routes in sync (%s mode); %d entries repaired\n", cfg.HAProxy, n)
		return nil
	}
	return c
}

func checkCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "check",
		Short: "Check file modes, that the runtime socket is not network-exposed, the HAProxy config, and stored names that break the naming rules; non-zero on problems. Warns of tunnel and TCP ports in the kernel's ephemeral range or held by another process",
		Args:  cobra.NoArgs,
	}
	load := config.Flags(c.Flags())
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := load()
		if err != nil {
			return err
		}
		findings := check.Run(cmd.Context(), cfg)
		for _, f := range findings {
			fmt.Fprintf(cmd.OutOrStdout(), "PROBLEM %s\n        fix: %s\n", f.What, f.Fix)
		}
		// Port conflicts are warnings: the cloud runs, some homes may not.
		if host, err := check.ReadHost(cfg.Layout.TunnelRange(), cfg.TCPPorts); err == nil {
			for _, f := range check.Ports(cfg, host) {
				fmt.Fprintf(cmd.OutOrStdout(), "WARNING %s\n        fix: %s\n", f.What, f.Fix)
			}
		}
		if len(findings) > 0 {
			return fmt.Errorf("%d problem(s) found", len(findings))
		}
		fmt.Fprintf(cmd.OutOrStdout(), "ok: %s looks right\n", cfg.Data)
		return nil
	}
	return c
}

func backupCmd() *cobra.Command {
	var data, output string
	c := &cobra.Command{
		Use:   "backup --output FILE [--data DIR]",
		Short: "Write a consistent copy of the database (0600), safe while the cloud runs",
		Long: `Write a consistent copy of DATA/cloud.db to FILE (mode 0600), safe while the
cloud runs (SQLite VACUUM INTO: one transaction's view, writers never wait).
An existing FILE is never overwritten. To restore: stop the cloud, put FILE
in place as DATA/cloud.db (0600), remove DATA/cloud.db-wal and -shm, start.
The SSH host key (DATA/ssh_host_ed25519_key) is a plain file: copy it once,
homes pin it. A cloud on PostgreSQL (--db postgres://...) is backed up with
pg_dump instead.`,
		Example: `  cloud backup --data /var/lib/homeport --output /root/homeport-$(date +%F).db`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := backup.Database(cmd.Context(), filepath.Join(data, "cloud.db"), output); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup of %s written to %s\n", data, output)
			return nil
		},
	}
	c.Flags().StringVar(&data, "data", envOr("CLOUD_DATA", "./cloud-data"), "state directory of the cloud")
	c.Flags().StringVar(&output, "output", "", "backup file to create (required)")
	_ = c.MarkFlagRequired("output")
	return c
}
