package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/console"
	"homeport.dev/home/internal/store"
)

func consoleCmd() *cobra.Command {
	var listen string
	var setPassword bool
	c := &cobra.Command{
		Use:   "console [--listen 127.0.0.1:8001] [--set-password]",
		Short: "Run the home: keep the tunnel up and serve the dashboard",
		Long: `Run the home: sync the entries with the cloud, keep the one SSH tunnel up,
route forwarded connections to the local services, and serve the dashboard.
The dashboard binds 127.0.0.1 by default (console.listen in config.yaml,
or HOME_CONSOLE_LISTEN, e.g. 0.0.0.0:8001 in a container); bound anywhere
else it requires the password set with --set-password.

It starts over once, in place, with GODEBUG=schedtrace=2147483647 added
(less CPU per connection; GODEBUG=schedtrace=0 keeps Go's default).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !setPassword {
				keepPolling()
			}
			p, err := resolveProfile(cmd, configFlag)
			if err != nil {
				return err
			}
			if setPassword {
				pw, err := readLine(cmd.InOrStdin())
				if err != nil {
					return err
				}
				hash, err := console.HashPassword(pw)
				if err != nil {
					return err
				}
				p.Console.PasswordHash = hash
				if err := p.Save(); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "console password set")
				return nil
			}
			if listen == "" {
				listen = p.Console.Listen
			}
			return runAgent(cmd, p.Dir, func(ctx context.Context, a *agent.Agent) error {
				con, err := console.New(a, console.Options{Listen: listen, Log: logger()})
				if err != nil {
					return err
				}
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					return fmt.Errorf("console listen on %s: %w (another console? choose --listen)", listen, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "home %s: console on http://%s, tunnel to %s\n", a.Profile.Cloud.Home, ln.Addr(), a.Profile.SSHAddr())
				return con.Serve(ctx, ln)
			})
		},
	}
	c.Flags().StringVar(&listen, "listen", os.Getenv("HOME_CONSOLE_LISTEN"), "dashboard address (default $HOME_CONSOLE_LISTEN, else console.listen, 127.0.0.1:8001)")
	c.Flags().BoolVar(&setPassword, "set-password", false, "read a console password from stdin, store its hash in config.yaml, and exit")
	return c
}

// runAgent runs the profile's agent until the command's context ends, with
// serve running beside it (the console, or nothing in the foreground mode).
func runAgent(cmd *cobra.Command, dir string, serve func(context.Context, *agent.Agent) error) error {
	return runAgentWith(cmd, dir, agent.Options{Log: logger()}, serve)
}

// runAgentWith is runAgent with agent options; it also ends when serve
// returns.
func runAgentWith(cmd *cobra.Command, dir string, o agent.Options, serve func(context.Context, *agent.Agent) error) error {
	p, err := resolveProfile(cmd, dir)
	if err != nil {
		return err
	}
	db := store.Open(p)
	// An invalid forwards: list stops the start here, naming the field; a
	// running agent refuses such an edit and keeps serving.
	if _, err := db.Entries(cmd.Context()); err != nil {
		return err
	}
	a, err := agent.New(p, db, o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- a.Run(ctx) }()
	go func() { errc <- serve(ctx, a) }()
	err = <-errc
	cancel()
	if err2 := <-errc; err == nil {
		err = err2
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func logger() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("HOMEPORT_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("nothing on stdin; pipe the password in, e.g. echo 'a long passphrase' | home console --set-password")
	}
	return line, nil
}
