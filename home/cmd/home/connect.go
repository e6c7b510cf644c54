package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/control"
	"homeport.dev/proto"
)

func connectCmd() *cobra.Command {
	var local string
	c := &cobra.Command{
		Use:   "connect [HOME/]NAME --local 127.0.0.1:PORT",
		Short: "Reach a private forward of your account on a local port, like ssh -L",
		Long: `Reach a private forward (one of any home of your account, e.g. a GPU box's
web UI) on a local port, through the cloud, without ever exposing it
publicly. Runs over this profile's tunnel: the console (or a foreground
sync-tunnels) must be running. NAME is the private forward's name on this
home; HOME/NAME names one of another home of the account (HOME is its slug),
as 'home forwards list' on that home and the cloud's web UI show them.
A mapping ID in place of the name still works but is deprecated: IDs change
when a forward is closed and opened, names do not.`,
		Example: `  home connect gpu-ui --local 127.0.0.1:7860
  home connect k3x9q2ab/gpu-ui --local 127.0.0.1:7860`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := args[0]
			if host, _, err := net.SplitHostPort(local); err != nil || !isLoopbackHost(host) {
				return fmt.Errorf("--local %s must be a loopback address like 127.0.0.1:7860: the point is not to expose it", proto.Printable(local))
			}
			return withProfile(cmd, func(ctx context.Context, s *session) error {
				m, byID, err := privateMapping(ctx, s, ref)
				if err != nil {
					return err
				}
				self := s.p.Cloud.Home
				if byID {
					fmt.Fprintf(cmd.ErrOrStderr(), "home connect ID is deprecated (a mapping's ID changes when its forward is closed and opened); use its name: home connect %s\n", connectRef(m, self))
				}
				target := &privateTarget{s: s, ref: m.Home + "/" + m.Name, port: m.TunnelPort}
				if m.Name == "" { // a cloud from before mapping names
					target.ref = ""
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
				fmt.Fprintf(cmd.OutOrStdout(), "private mapping %s on http://%s (Ctrl-C to stop)\n", connectRef(m, self), ln.Addr())
				go func() { <-cmd.Context().Done(); ln.Close() }()
				for {
					c, err := ln.Accept()
					if err != nil {
						return nil
					}
					go func() {
						defer c.Close()
						t, err := target.dial(cmd.Context(), agent)
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

// privateMapping finds the private mapping ref ([HOME/]NAME, or a
// deprecated ID) among the account's private mappings (any of its homes').
func privateMapping(ctx context.Context, s *session, ref string) (m proto.PrivateMapping, byID bool, err error) {
	ms, err := s.cloud.PrivateMappings(ctx)
	if err != nil {
		return m, false, err
	}
	return cloudapi.FindPrivateMapping(ms, s.p.Cloud.Home, ref)
}

// connectRef is how `home connect` on home self names m.
func connectRef(m proto.PrivateMapping, self string) string {
	switch {
	case m.Name == "":
		return strconv.FormatUint(m.ID, 10)
	case m.Home == self:
		return m.Name
	}
	return m.Home + "/" + m.Name
}

// privateTarget is what connect dials: the tunnel port of the mapping
// named ref, looked up for each connection. Closing and opening a forward
// (or a sync after a disconnect) may give the name another tunnel port, and
// its old port to another forward: a port kept from the start could reach
// the wrong service.
type privateTarget struct {
	s    *session
	ref  string // HOME/NAME; "" when the cloud gave no name: port is kept
	port int
}

func (p *privateTarget) dial(ctx context.Context, agent *control.Client) (net.Conn, error) {
	port := p.port
	if p.ref != "" {
		m, _, err := privateMapping(ctx, p.s, p.ref)
		if err != nil {
			return nil, err
		}
		port = m.TunnelPort
	}
	return agent.Dial(ctx, port)
}

func isLoopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "localhost" || ip != nil && ip.IsLoopback()
}
