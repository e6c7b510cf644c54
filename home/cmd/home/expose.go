package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/entries"
	"homeport.dev/home/internal/store"
	"homeport.dev/proto"
)

func exposeCmd() *cobra.Command {
	var to, mode, name, deployPath string
	var proxyProto, private bool
	c := &cobra.Command{
		Use:   "expose http|https|tcp [HOST|LABEL|PORT] --to HOST:PORT",
		Short: "Expose a local service (creates the entry and its cloud mapping)",
		Long: `Expose a local service:
  https NAME   TLS by SNI, either terminated at home with the home's own
               certificate in front of a plain-HTTP service (--mode terminate), or
               passed through to a local TLS service (--mode passthrough); without
               --mode the target is probed: a TLS service gets passthrough
  http NAME    plain HTTP by Host header
  http|https   without NAME, on a cloud with a shared domain: the cloud picks
               a free name SLUG.SHARED (or N-SLUG.SHARED) and it is printed;
               a NAME without a dot is a label there: LABEL-SLUG.SHARED
  tcp PORT     a public TCP port of this home's range
  tcp --private --name NAME   reachable only through 'home connect', never public`,
		Example: `  home expose https app.example.com --to localhost:3000
  home expose http --to :3000
  home expose https blog --to localhost:8080
  home expose tcp 10001 --to localhost:22
  home expose tcp --private --name gpu-ui --to localhost:7860`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if deployPath != "" {
				abs, err := filepath.Abs(deployPath)
				if err != nil {
					return err
				}
				deployPath = abs
			}
			e := store.Entry{Scheme: args[0], Target: to, Mode: mode, ProxyProtocol: proxyProto, Private: private, Name: name, Enabled: true, DeployPath: deployPath}
			switch {
			case len(args) == 2 && e.Scheme == "tcp":
				port, err := strconv.Atoi(args[1])
				if err != nil {
					return fmt.Errorf("tcp takes a public port number, not %q", args[1])
				}
				e.PublicPort = port
			case len(args) == 2:
				e.Host = args[1]
			case e.Scheme == "tcp" && !private:
				return fmt.Errorf("say which public port of this home's range: home expose tcp PORT --to HOST:PORT")
			}
			if to == "" {
				return fmt.Errorf("--to is required: the local service, like localhost:3000")
			}
			return withProfile(cmd, func(ctx context.Context, s *session) error {
				e, note, err := exposeEntry(ctx, s, e)
				if err != nil {
					return err
				}
				printExposed(cmd, s.p.Cloud.Home, e, note, visitURL(ctx, s, e))
				notifyConsole(cmd, s)
				return nil
			})
		},
	}
	f := c.Flags()
	f.StringVar(&to, "to", "", "local service HOST:PORT (this machine unless features.lan_forwarding is on)")
	f.StringVar(&mode, "mode", "", "https only: terminate (local plain HTTP, the home's certificate) or passthrough (local TLS service); default: probe the target")
	f.StringVar(&deployPath, "deploy-path", "", "http/https: copy the name's certificate (fullchain.pem, privkey.pem) to this directory after every issuance")
	f.BoolVar(&proxyProto, "proxy-protocol", false, "tcp only: send a PROXY v2 header with the visitor's address to the local service")
	f.BoolVar(&private, "private", false, "never public: reachable only with 'home connect'")
	f.StringVar(&name, "name", "", "name of a private entry")
	return c
}

func forwardsCmd() *cobra.Command {
	c := &cobra.Command{Use: "forwards", Short: "List, remove, open and close the home's entries"}
	list := &cobra.Command{
		Use: "list", Short: "List entries", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withProfile(cmd, func(ctx context.Context, s *session) error {
				es, err := s.db.Entries(ctx)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tPUBLIC\tTARGET\tMODE\tENABLED\tMAPPING\tTUNNEL PORT\tLAST ERROR")
				for _, e := range es {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%v\t%d\t%d\t%s\n", e.ID, e.Public(), e.Target, dash(e.Mode), e.Enabled, e.MappingID, e.TunnelPort, dash(e.SyncError))
				}
				return w.Flush()
			})
		},
	}
	rm := &cobra.Command{
		Use: "rm ID", Short: "Remove an entry and its cloud mapping", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return entryCmd(cmd, args[0], func(ctx context.Context, s *session, e store.Entry) error {
				if e.MappingID != 0 {
					if err := s.cloud.DeleteMapping(ctx, s.p.Cloud.Home, e.MappingID); err != nil && !isNotFound(err) {
						return err
					}
				}
				if err := s.db.Remove(ctx, e.Public()); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", e.Public())
				return nil
			})
		},
	}
	setEnabled := func(use, short string, on bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return entryCmd(cmd, args[0], func(ctx context.Context, s *session, e store.Entry) error {
					if err := s.db.SetEnabled(ctx, e.Public(), on); err != nil {
						return err
					}
					rep, err := entries.Sync(ctx, s.cloud, s.p.Cloud.Home, s.db, entries.Options{})
					if err != nil {
						return err
					}
					printReport(cmd, rep)
					return nil
				})
			},
		}
	}
	c.AddCommand(list, rm, setEnabled("open", "Open an entry (create its mapping)", true), setEnabled("close", "Close an entry (remove its mapping, keep the entry)", false))
	return c
}

// entryCmd runs fn on entry idArg of the selected profile, then tells a
// running console.
func entryCmd(cmd *cobra.Command, idArg string, fn func(context.Context, *session, store.Entry) error) error {
	id, err := strconv.ParseUint(idArg, 10, 64)
	if err != nil {
		return fmt.Errorf("entry ID %q is not a number; `home forwards list` shows them", idArg)
	}
	return withProfile(cmd, func(ctx context.Context, s *session) error {
		e, err := s.db.Entry(ctx, id)
		if err != nil {
			return err
		}
		if err := fn(ctx, s, e); err != nil {
			return err
		}
		notifyConsole(cmd, s)
		return nil
	})
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// exposeEntry creates the cloud mapping of e, then the local entry: the
// cloud decides first, so a refused mapping leaves nothing behind. An
// http/https entry without a host gets the name the cloud picks under its
// shared domain; a host without a dot is a label there.
func exposeEntry(ctx context.Context, s *session, e store.Entry) (store.Entry, string, error) {
	if e.Scheme != proto.SchemeTCP && e.Host != "" && !strings.Contains(e.Host, ".") {
		h, err := s.cloud.Home(ctx, s.p.Cloud.Home)
		if err != nil {
			return e, "", err
		}
		if h.SharedDomain == "" {
			return e, "", fmt.Errorf("%s is not a full host name, and this cloud has no shared domain to make it a label of: give a name under one of your base domains (home domains add example.com)", proto.Printable(e.Host))
		}
		label := strings.ToLower(e.Host)
		if err := proto.ValidateSharedLabel(label, h.Slug); err != nil {
			return e, "", err
		}
		e.Host = proto.SharedName(label, h.Slug, h.SharedDomain)
	}
	e, note := entries.ChooseMode(ctx, e, s.p.Features.LANForwarding)
	pick := e.Scheme != proto.SchemeTCP && e.Host == ""
	if pick {
		// Everything but the name is checked before the cloud picks one.
		probe := e
		probe.Host = "name.invalid"
		if _, err := entries.Normalize(probe, s.p.Features.LANForwarding); err != nil {
			return e, "", err
		}
	} else {
		var err error
		if e, err = entries.Normalize(e, s.p.Features.LANForwarding); err != nil {
			return e, "", err
		}
	}
	m, err := s.cloud.CreateMapping(ctx, s.p.Cloud.Home, entries.Request(e))
	if err != nil {
		if pick && cloudapi.IsStatus(err, 400) {
			return e, "", fmt.Errorf("%w\n(without a host name the cloud picks one under its shared domain; this cloud may have none: give a name under one of your base domains)", err)
		}
		return e, "", err
	}
	if pick {
		e.Host = m.Host
		if e, err = entries.Normalize(e, s.p.Features.LANForwarding); err != nil {
			s.cloud.DeleteMapping(ctx, s.p.Cloud.Home, m.ID)
			return e, "", err
		}
	}
	e.MappingID, e.TunnelPort = m.ID, m.TunnelPort
	if err := s.db.Add(ctx, &e); err != nil {
		s.cloud.DeleteMapping(ctx, s.p.Cloud.Home, m.ID)
		return e, "", err
	}
	return e, note, nil
}

// visitURL is where visitors reach e, with the cloud's public port when it
// is not the scheme's default (cloud serve --dev listens on 8080/8443);
// "" for a private entry, or when the cloud cannot be asked.
func visitURL(ctx context.Context, s *session, e store.Entry) string {
	if e.Private {
		return ""
	}
	h, err := s.cloud.Home(ctx, s.p.Cloud.Home)
	if err != nil {
		return ""
	}
	return publicURL(e, h)
}

// publicURL is visitURL's rule, given the home's API answer.
func publicURL(e store.Entry, h proto.Home) string {
	port, def := h.PublicHTTPPort, 80
	switch e.Scheme {
	case proto.SchemeHTTPS:
		port, def = h.PublicHTTPSPort, 443
	case proto.SchemeTCP:
		return net.JoinHostPort(h.SSH.Host, strconv.Itoa(e.PublicPort))
	}
	if port == 0 || port == def {
		return e.Scheme + "://" + e.Host + "/"
	}
	return e.Scheme + "://" + net.JoinHostPort(e.Host, strconv.Itoa(port)) + "/"
}

func printExposed(cmd *cobra.Command, slug string, e store.Entry, note, visit string) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "exposed %s -> %s (entry %d, tunnel port %d)\n", e.Public(), e.Target, e.ID, e.TunnelPort)
	if visit != "" {
		fmt.Fprintf(out, "visitors reach it at %s\n", visit)
	}
	if e.Private && e.Name != "" {
		fmt.Fprintf(out, "reach it with: home connect %s (on this home), home connect %s/%s (on another home of your account)\n", e.Name, slug, e.Name)
	}
	if note != "" {
		fmt.Fprintln(out, note)
	}
	if e.Mode == store.ModeTerminate || e.DeployPath != "" {
		fmt.Fprintf(out, "certificate: the agent obtains one for %s through the tunnel (home certs list shows it); until then visitors see a TLS error\n", e.Host)
	}
}
