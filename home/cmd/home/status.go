package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/certs"
	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/entries"
	"homeport.dev/home/internal/store"
	"homeport.dev/proto"
)

// notifyConsole asks a running console to pick up changed entries; without
// one, it says how the change goes live.
func notifyConsole(cmd *cobra.Command, s *session) {
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	err := control.NewClient(s.p.SocketPath()).Reload(ctx)
	switch {
	case err == nil:
		fmt.Fprintln(cmd.ErrOrStderr(), "the running console picked up the change")
	case errors.Is(err, control.ErrNotRunning):
		fmt.Fprintf(cmd.ErrOrStderr(), "no console runs for this profile: start `home --config %s console` to bring the tunnel up\n", s.p.Dir)
	default:
		fmt.Fprintf(cmd.ErrOrStderr(), "the running console did not pick up the change: %v\n", err)
	}
}

func isNotFound(err error) bool { return cloudapi.IsStatus(err, 404) }

func printReport(cmd *cobra.Command, rep entries.Report) {
	for _, c := range rep.Changes {
		if c.Error != "" {
			fmt.Fprintf(cmd.OutOrStdout(), "  %-8s %s: %s\n", c.Action, c.What, c.Error)
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "  %-8s %s\n", c.Action, c.What)
		}
	}
}

func limitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "limit",
		Short: "Show the home's bandwidth limit (change it in the cloud's web UI)",
		Long: `Show the home's bandwidth limit in kbit/s. The limit is the cloud account's
to set, not the home's: change it in the cloud's web UI (or with the API and
an account token).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withProfile(cmd, func(ctx context.Context, s *session) error {
				if len(args) > 0 {
					return fmt.Errorf("a home cannot change its own bandwidth limit: change it in the cloud's web UI (%s)", s.p.Cloud.URL)
				}
				h, err := s.cloud.Home(ctx, s.p.Cloud.Home)
				if err != nil {
					return err
				}
				if h.BandwidthLimitKbps == nil {
					fmt.Fprintln(cmd.OutOrStdout(), "bandwidth limit: none")
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "bandwidth limit: %d kbit/s\n", *h.BandwidthLimitKbps)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "change it in the cloud's web UI (%s)\n", s.p.Cloud.URL)
				return nil
			})
		},
	}
}

func syncCmd() *cobra.Command {
	var o entries.Options
	var foreground bool
	o.Connect = true // the user's say: entries an earlier --disconnect left are mapped again
	c := &cobra.Command{
		Use:   "sync-tunnels [--domain NAME] [--disconnect]",
		Short: "Make the cloud's mappings match the local entries, then (re)connect the tunnel",
		Long: `Make the cloud's mappings match the local entries: create missing mappings,
remove stale ones of this home, record tunnel ports; then ask the running
console to (re)connect. --disconnect removes the mappings and closes the
tunnel instead; with --domain, only the mappings and forwards of that
domain's entries (the tunnel carries the others on), and they stay
unmapped until a sync-tunnels without --disconnect. A --domain that
matches no entry is an error. Idempotent; prints what it changed; exits 0
only when everything is in sync.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withProfile(cmd, func(ctx context.Context, s *session) error {
				rep, err := entries.Sync(ctx, s.cloud, s.p.Cloud.Home, s.db, o)
				if err != nil {
					return err
				}
				printReport(cmd, rep)
				running := control.NewClient(s.p.SocketPath())
				switch {
				case o.Disconnect && o.Domain != "":
					// Only the domain's entries: the running agent drops
					// their forwards; the tunnel carries the others on.
					err = running.Reload(ctx)
				case o.Disconnect:
					err = running.Disconnect(ctx)
				default:
					err = running.Reload(ctx)
				}
				switch {
				case errors.Is(err, control.ErrNotRunning) && foreground && !o.Disconnect:
					if !rep.InSync {
						return errors.New("not in sync: see the failures above")
					}
					fmt.Fprintln(cmd.OutOrStdout(), "in sync; running the tunnel in the foreground (Ctrl-C to stop)")
					return runAgent(cmd, s.p.Dir, func(ctx context.Context, a *agent.Agent) error {
						return a.UntilReplaced(ctx)
					})
				case errors.Is(err, control.ErrNotRunning) && !o.Disconnect:
					fmt.Fprintf(cmd.ErrOrStderr(), "no console runs for this profile: start `home --config %s console`, or pass --foreground\n", s.p.Dir)
				case errors.Is(err, control.ErrNotRunning):
				case err != nil:
					return err
				}
				if !rep.InSync {
					return errors.New("not in sync: see the failures above")
				}
				fmt.Fprintln(cmd.OutOrStdout(), "in sync")
				return nil
			})
		},
	}
	c.Flags().StringVar(&o.Domain, "domain", "", "only entries at or under this domain")
	c.Flags().BoolVar(&o.Disconnect, "disconnect", false, "remove the mappings and close the tunnel (with --domain: only that domain's)")
	c.Flags().BoolVar(&foreground, "foreground", false, "when no console runs, run the tunnel here until Ctrl-C")
	return c
}

func statusCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status [--json]",
		Short: "What is connected, mapped and certified",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withProfile(cmd, func(ctx context.Context, s *session) error {
				st, err := control.NewClient(s.p.SocketPath()).FreshStatus(ctx)
				if errors.Is(err, control.ErrNotRunning) {
					es, err := s.db.Entries(ctx)
					if err != nil {
						return err
					}
					st = agent.OfflineStatus(ctx, s.p, es, s.cloud)
					if st.Certificates, err = storedCertificates(s.p.CertsPath(), es); err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "certificates: %v\n", err)
					}
				} else if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(st)
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "home %s on %s\ntunnel: %s", st.Home, st.Cloud, st.Tunnel.State)
				if !st.Tunnel.Since.IsZero() {
					fmt.Fprintf(out, " since %s", st.Tunnel.Since.Format(time.RFC3339))
				}
				if st.Tunnel.LastError != "" {
					fmt.Fprintf(out, " (%s%s)", st.Tunnel.LastError, sinceText(st.Tunnel.ErrorSince))
				}
				fmt.Fprintln(out)
				if st.MappingsError != "" {
					fmt.Fprintf(out, "%s%s\n", st.MappingsError, sinceText(st.MappingsErrorSince))
				}
				if st.ConfigError != "" {
					fmt.Fprintf(out, "config.yaml refused, the forwards below run as before the edit:\n%s\n", st.ConfigError)
				}
				w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "ENTRY\tPUBLIC\tTARGET\tSTATE\tLOCAL\tSINCE\tWHY")
				for _, f := range st.Forwards {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Entry, f.Public, f.Target, forwardState(f), upDown(f.LocalUp), stamp(f.Since), dash(whyText(f)))
				}
				if err := w.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(out, "\nCERTIFICATES")
				if err := printCerts(out, st.Certificates); err != nil {
					return err
				}
				es, _ := s.db.Entries(ctx) // refused: ConfigError says why
				printPending(out, es, st.Certificates, time.Now())
				return nil
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// printPending warns, for each open https entry that terminates TLS,
// while no certificate for its name is in service: its visitors get a TLS
// error until one is issued.
func printPending(out io.Writer, es []store.Entry, infos []certs.Info, now time.Time) {
	byName := map[string]*certs.Info{}
	for i := range infos {
		byName[infos[i].Domain] = &infos[i]
	}
	for _, e := range es {
		if e.Scheme != proto.SchemeHTTPS || e.Mode != store.ModeTerminate || !e.Enabled {
			continue
		}
		if notice := certs.PendingNotice(byName[e.Host], now); notice != "" {
			fmt.Fprintf(out, "%s: %s\n", e.Public(), notice)
		}
	}
}

// forwardState is a forward's state in a word: up, down or closed.
func forwardState(f control.ForwardStatus) string {
	switch {
	case f.Up:
		return "up"
	case f.State == control.ForwardClosed:
		return "closed"
	}
	return "down"
}

// whyText is what is wrong with a forward, empty when up or closed.
func whyText(f control.ForwardStatus) string {
	if f.Up || f.State == control.ForwardClosed {
		return ""
	}
	return f.Error
}

func sinceText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return ", since " + stamp(t)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func upDown(b bool) string {
	if b {
		return "up"
	}
	return "down"
}
