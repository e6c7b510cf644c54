package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/control"
	"homeport.dev/proto"
)

func connectCmd() *cobra.Command {
	var local string
	c := &cobra.Command{
		Use:   "connect MAPPING-ID --local 127.0.0.1:PORT",
		Short: "Reach a private mapping of your account on a local port, like ssh -L",
		Long: `Reach a private mapping (one of any home of your account, e.g. a GPU box's
web UI) on a local port, through the cloud, without ever exposing it
publicly. Runs over this profile's tunnel: the console (or a foreground
sync-tunnels) must be running. MAPPING-ID is the mapping's ID as
'home forwards list' on the owning home, or the cloud's web UI, shows it.`,
		Example: `  home connect 42 --local 127.0.0.1:7860`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("mapping ID %q is not a number", args[0])
			}
			if host, _, err := net.SplitHostPort(local); err != nil || !isLoopbackHost(host) {
				return fmt.Errorf("--local %s must be a loopback address like 127.0.0.1:7860: the point is not to expose it", proto.Printable(local))
			}
			return withProfile(cmd, func(ctx context.Context, s *session) error {
				port, err := privatePort(ctx, s, id)
				if err != nil {
					return err
				}
				agent := control.NewClient(s.p.SocketPath())
				if _, err := agent.Status(ctx); errors.Is(err, control.ErrNotRunning) {
					return fmt.Errorf("%w: start `home --config %s console` first", err, s.p.Dir)
				}
				ln, err := net.Listen("tcp", local)
				if err != nil {
					return err
				}
				defer ln.Close()
				fmt.Fprintf(cmd.OutOrStdout(), "private mapping %d on http://%s (Ctrl-C to stop)\n", id, ln.Addr())
				go func() { <-cmd.Context().Done(); ln.Close() }()
				for {
					c, err := ln.Accept()
					if err != nil {
						return nil
					}
					go func() {
						defer c.Close()
						t, err := agent.Dial(cmd.Context(), port)
						if err != nil {
							fmt.Fprintf(cmd.ErrOrStderr(), "connect: %v\n", err)
							return
						}
						defer t.Close()
						done := make(chan struct{}, 2)
						go func() { io.Copy(t, c); done <- struct{}{} }()
						go func() { io.Copy(c, t); done <- struct{}{} }()
						<-done
					}()
				}
			})
		},
	}
	c.Flags().StringVar(&local, "local", "127.0.0.1:0", "local address to listen on")
	return c
}

// privatePort finds the tunnel port of private mapping id among the
// account's private mappings (any of its homes').
func privatePort(ctx context.Context, s *session, id uint64) (int, error) {
	ms, err := s.cloud.PrivateMappings(ctx)
	if err != nil {
		return 0, err
	}
	for _, m := range ms {
		if m.ID == id {
			return m.TunnelPort, nil
		}
	}
	return 0, fmt.Errorf("no home of yours has a private mapping %d (connect reaches private mappings only; 'home forwards list' on the owning home shows their IDs)", id)
}

func isLoopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "localhost" || ip != nil && ip.IsLoopback()
}
