package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/certs"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/entries"
	"homeport.dev/home/internal/profile"
	"homeport.dev/home/internal/store"
	"homeport.dev/proto"
)

func upCmd() *cobra.Command {
	var o profile.RegisterOptions
	var to, host string
	var https bool
	c := &cobra.Command{
		Use:   "up [--cloud URL --token TOKEN] --to HOST:PORT [--https] [--host NAME]",
		Short: "First run in one command: register, expose a local service, run the tunnel",
		Long: `Do the whole first run in one command, and run the home in the foreground
with a live status line until Ctrl-C:

 1. register: with --cloud and --token, claim a home and write a profile,
    unless a profile for that cloud exists already (the token is used only
    for this claim and never stored);
 2. expose --to: publish the local service over http (or https with
    --https, with a certificate obtained through the tunnel). Without
    --host the cloud picks a name under its shared domain and it is
    printed; a --host without a dot is a label there. Running 'home up'
    again reuses what the first run exposed;
 3. run the tunnel here (when a console already runs for the profile, it
    carries the new forward instead and 'home up' returns).

Before step 1 it starts over once, in place, with
GODEBUG=schedtrace=2147483647 added (less CPU per connection;
GODEBUG=schedtrace=0 keeps Go's default).`,
		Example: `  home up --cloud https://cloud.example.com --token hp_... --to localhost:3000
  home up --to :3000 --https
  home up --to :8080 --host blog`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keepPolling()
			if o.Token == "" {
				o.Token = os.Getenv("HOMEPORT_TOKEN")
			}
			dir, err := upProfile(cmd, o)
			if err != nil {
				return err
			}
			prev := configFlag
			configFlag = dir
			defer func() { configFlag = prev }()
			err = withProfile(cmd, func(ctx context.Context, s *session) error {
				if to != "" {
					scheme := proto.SchemeHTTP
					if https {
						scheme = proto.SchemeHTTPS
					}
					if _, err := upEntry(ctx, cmd, s, store.Entry{Scheme: scheme, Host: host, Target: to, Enabled: true}); err != nil {
						return err
					}
				}
				es, err := s.db.Entries(ctx)
				if err != nil {
					return err
				}
				if len(es) == 0 {
					return errors.New("nothing to run: say what to publish with --to, like --to localhost:3000")
				}
				running := control.NewClient(s.p.SocketPath())
				if err := running.Reload(ctx); err == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "the console running for %s carries it now (home status shows it)\n", s.p.Dir)
					return errRunning
				} else if !errors.Is(err, control.ErrNotRunning) {
					return err
				}
				return nil
			})
			if errors.Is(err, errRunning) {
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "running the tunnel (Ctrl-C to stop)")
			// The status line is the view; the log keeps only warnings and
			// errors (HOMEPORT_DEBUG=1 shows everything).
			o := agent.Options{Log: logger()}
			if os.Getenv("HOMEPORT_DEBUG") == "" {
				o.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			return runAgentWith(cmd, dir, o, func(ctx context.Context, a *agent.Agent) error {
				return statusLine(ctx, cmd.ErrOrStderr(), a, isTerminal(cmd.ErrOrStderr()))
			})
		},
	}
	f := c.Flags()
	f.StringVar(&o.Cloud, "cloud", "", "the cloud's URL, when there is no profile for it yet")
	f.StringVar(&o.Token, "token", "", "an API token of your cloud account, to claim a home (or HOMEPORT_TOKEN); used once, never stored")
	f.StringVar(&o.Name, "name", "", "profile name for a new registration")
	f.StringVar(&o.CAFile, "ca-file", "", "PEM file of the CA that signs the cloud's certificate, when it is not publicly trusted")
	f.BoolVar(&o.InsecureHTTP, "insecure-http", false, "allow an http:// cloud URL on another machine (a trusted LAN only)")
	f.StringVar(&to, "to", "", "the local service to publish, HOST:PORT (or just PORT: this machine)")
	f.StringVar(&host, "host", "", "the public name (default: one the cloud picks under its shared domain); a name without a dot is a label there")
	f.BoolVar(&https, "https", false, "publish over https with a certificate obtained through the tunnel (default http)")
	return c
}

// errRunning ends `home up` early: a console already carries the profile.
var errRunning = errors.New("a console runs for this profile")

// upProfile returns the profile `home up` uses: --config, or the profile
// of --cloud when one exists, or a new registration with --cloud and
// --token, or the only profile there is.
func upProfile(cmd *cobra.Command, o profile.RegisterOptions) (string, error) {
	if configFlag != "" || o.Cloud == "" {
		p, err := resolveProfile(cmd, configFlag)
		if err != nil && o.Cloud == "" {
			return "", fmt.Errorf("%w\n(or give --cloud URL --token TOKEN to register this machine now)", err)
		}
		if err != nil {
			return "", err
		}
		return p.Dir, nil
	}
	if dir, ok := profileFor(o.Cloud); ok {
		fmt.Fprintf(cmd.ErrOrStderr(), "... using the profile %s for %s (already registered)\n", dir, o.Cloud)
		return dir, nil
	}
	if o.Token == "" {
		return "", errors.New("no profile for " + o.Cloud + " yet: give --token TOKEN to register this machine (create one in the cloud's web UI: Show my setup command)")
	}
	o.Progress = func(format string, args ...any) { fmt.Fprintf(cmd.ErrOrStderr(), "... "+format+"\n", args...) }
	p, h, err := profile.Register(cmd.Context(), o)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "registered home %s (profile %s)\n", h.Slug, p.Dir)
	return p.Dir, nil
}

// profileFor finds an existing profile of the cloud at url.
func profileFor(url string) (string, bool) {
	all, err := profile.List()
	if err != nil {
		return "", false
	}
	want := strings.TrimRight(strings.TrimSpace(url), "/")
	for _, dir := range all {
		if p, err := config.Load(dir); err == nil && p.Cloud.URL == want {
			return dir, true
		}
	}
	return "", false
}

// upEntry exposes want, or finds the entry an earlier `home up` made for
// the same target and scheme (and host, when given).
func upEntry(ctx context.Context, cmd *cobra.Command, s *session, want store.Entry) (store.Entry, error) {
	target, err := entries.CheckTarget(want.Target, s.p.Features.LANForwarding)
	if err != nil {
		return want, err
	}
	es, err := s.db.Entries(ctx)
	if err != nil {
		return want, err
	}
	for _, e := range es {
		if e.Scheme == want.Scheme && e.Target == target && !e.Private && (want.Host == "" || strings.HasPrefix(e.Host, want.Host)) {
			fmt.Fprintf(cmd.OutOrStdout(), "already exposed %s -> %s\n", e.Public(), e.Target)
			if visit := visitURL(ctx, s, e); visit != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "visitors reach it at %s\n", visit)
			}
			return e, nil
		}
	}
	e, note, err := exposeEntry(ctx, s, want)
	if err != nil {
		return want, err
	}
	printExposed(cmd, s.p.Cloud.Home, e, note, visitURL(ctx, s, e))
	return e, nil
}

// statusLine prints the agent's state whenever it changes until ctx ends
// (nil) or another copy of the profile takes the tunnel over (the error
// says where it runs): rewritten in place on a terminal, one line per change
// otherwise (logs).
func statusLine(ctx context.Context, w io.Writer, a *agent.Agent, tty bool) error {
	changed, stop := a.Subscribe()
	defer stop()
	tick := time.NewTicker(2 * time.Second) // the local service's state is polled
	defer tick.Stop()
	last, started := "", false
	for {
		st := a.Status()
		// Before the agent's first connect the tunnel reads "stopped": not
		// news to anyone who just ran `home up`.
		started = started || st.Tunnel.State != "stopped"
		if line := summarize(st); started && line != last {
			if tty {
				fmt.Fprintf(w, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(w, line)
			}
			last = line
		}
		if err := a.Replaced(); err != nil {
			if tty {
				fmt.Fprintln(w)
			}
			return err
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(w)
			}
			return nil
		case <-changed:
		case <-tick.C:
		}
	}
}

// summarize is the status in one line: the tunnel, then each forward with
// what a visitor would experience.
func summarize(st control.Status) string {
	parts := []string{"tunnel " + st.Tunnel.State}
	if st.Tunnel.State != "connected" && st.Tunnel.LastError != "" {
		parts[0] += " (" + oneLine(st.Tunnel.LastError, 80) + ")"
	}
	certOf := map[string]certs.Info{}
	for _, c := range st.Certificates {
		certOf[c.Domain] = c
	}
	for _, f := range st.Forwards {
		// Up only when visitors reach the service; otherwise the layer
		// that fails, in the agent's words.
		state := "up"
		switch {
		case f.State == control.ForwardClosed:
			state = "closed"
		case !f.Up:
			state = "down: " + oneLine(f.Error, 90)
		}
		if host, ok := strings.CutPrefix(f.Public, "https://"); ok {
			if c, ok := certOf[host]; ok && c.State != certs.Valid && c.State != certs.Renewing {
				state += "; certificate " + oneLine(c.Summary(), 60) + " (visitors see a TLS error until it is issued)"
			}
		}
		parts = append(parts, f.Public+" -> "+f.Target+" "+state)
	}
	return strings.Join(parts, " | ")
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max-1] + "…"
	}
	return s
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
