package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/certs"
	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/store"
)

func certsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "certs",
		Short: "List, issue and renew the home's certificates (ACME through the tunnel)",
		Long: `The home obtains certificates from an ACME CA (acme.ca_url in config.yaml,
Let's Encrypt by default) for the names it exposes, answering the CA's
challenges itself through the tunnel: TLS-ALPN-01 on port 443, HTTP-01 on
port 80. Keys stay in the profile's certs directory. https entries in mode
terminate get theirs automatically and the running console renews every
certificate ahead of expiry; these commands show them and force an issuance.`,
	}
	var asJSON bool
	list := &cobra.Command{
		Use: "list [--json]", Short: "List certificates with their state", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withProfile(cmd, func(ctx context.Context, s *session) error {
				infos, err := certificates(ctx, s)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(infos)
				}
				return printCerts(cmd.OutOrStdout(), infos)
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	issue := func(use, short string, renew bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " DOMAIN", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return withProfile(cmd, func(ctx context.Context, s *session) error {
					return issueCert(cmd, s, strings.ToLower(args[0]), renew)
				})
			},
		}
	}
	c.AddCommand(list,
		issue("issue", "Obtain a certificate for DOMAIN unless a valid one exists, showing each step", false),
		issue("renew", "Obtain a new certificate for DOMAIN now (the current one serves until it is there)", true))
	return c
}

// issueCert asks the running console, or, when none runs, connects the
// tunnel here for the time of the issuance.
func issueCert(cmd *cobra.Command, s *session, domain string, renew bool) error {
	out := cmd.OutOrStdout()
	progress := func(step string) { fmt.Fprintf(out, "  %s\n", step) }
	info, err := control.NewClient(s.p.SocketPath()).IssueCertificate(cmd.Context(), domain, renew, progress)
	if errors.Is(err, control.ErrNotRunning) {
		fmt.Fprintln(out, "no console runs for this profile: connecting the tunnel here for this issuance")
		info, err = issueDirect(cmd, s, domain, renew, progress)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %s\n", domain, info.Summary())
	return nil
}

// issueDirect runs the profile's agent (tunnel and gateway, no automatic
// issuance) until the name's forwards are up and the issuance is done.
func issueDirect(cmd *cobra.Command, s *session, domain string, renew bool, progress certs.Progress) (certs.Info, error) {
	es, err := s.db.Entries(cmd.Context())
	if err != nil {
		return certs.Info{}, err
	}
	want := 0
	for _, e := range es {
		if e.Host == domain && e.Enabled && e.TunnelPort != 0 {
			want++
		}
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var info certs.Info
	var issueErr error
	err = runAgentWith(cmd, s.p.Dir, agent.Options{Log: quiet, ManualCerts: true}, func(ctx context.Context, a *agent.Agent) error {
		waitForwards(ctx, a, domain, want, 30*time.Second)
		info, issueErr = a.IssueCertificate(ctx, domain, renew, progress)
		return nil
	})
	if err != nil {
		return info, err
	}
	return info, issueErr
}

// waitForwards waits (bounded) until want forwards of domain are up.
func waitForwards(ctx context.Context, a *agent.Agent, domain string, want int, limit time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	changes, stop := a.Subscribe()
	defer stop()
	for {
		up := 0
		for _, f := range a.Status().Forwards {
			if f.Up && (f.Public == "https://"+domain || f.Public == "http://"+domain) {
				up++
			}
		}
		if up >= want {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// certificates asks the running console, else reads the certificates
// directory.
func certificates(ctx context.Context, s *session) ([]certs.Info, error) {
	st, err := control.NewClient(s.p.SocketPath()).Status(ctx)
	if err == nil {
		return st.Certificates, nil
	}
	if !errors.Is(err, control.ErrNotRunning) {
		return nil, err
	}
	es, err := s.db.Entries(ctx)
	if err != nil {
		return nil, err
	}
	return storedCertificates(s.p.CertsPath(), es)
}

// storedCertificates lists the certificates on disk; one is managed when
// an http or https entry uses its name.
func storedCertificates(dir string, es []store.Entry) ([]certs.Info, error) {
	infos, err := certs.Stored(dir)
	for i := range infos {
		for _, e := range es {
			if e.Host == infos[i].Domain {
				infos[i].Managed = true
			}
		}
	}
	return infos, err
}

func printCerts(out io.Writer, infos []certs.Info) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "DOMAIN\tSTATE\tCHALLENGE\tRENEWS")
	for _, c := range infos {
		renews := "-"
		if !c.RenewAt.IsZero() && c.Managed {
			renews = c.RenewAt.UTC().Format("2006-01-02 15:04 UTC")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Domain, c.Summary(), dash(c.Challenge), renews)
	}
	if len(infos) == 0 {
		fmt.Fprintln(w, "(none: https entries in mode terminate get one when the console runs; home certs issue DOMAIN for others)")
	}
	return w.Flush()
}
