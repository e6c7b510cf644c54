package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/profile"
)

func releaseCmd() *cobra.Command {
	var yes bool
	c := &cobra.Command{
		Use:   "release [--yes]",
		Short: "Release the home on its cloud and archive its profile",
		Long: `Release the profile's home: the cloud removes its mappings, base domains,
bandwidth class and SSH key, and frees the slot. Then the profile directory
is archived beside itself as DIR.released-YYYYMMDD-HHMMSS (keys and
certificates kept) and is no longer chosen as a profile.

Asks you to type the home's name unless --yes is given. Refused while a
console (or foreground tunnel) runs for the profile: stop it first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := resolveProfile(cmd, configFlag)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			if _, err := control.NewClient(p.SocketPath()).Status(ctx); !errors.Is(err, control.ErrNotRunning) {
				return fmt.Errorf("a console (or foreground tunnel) runs for this profile: stop it first (Ctrl-C where it runs, or stop its service or container), then run home release again")
			}
			if !yes {
				fmt.Fprintf(cmd.ErrOrStderr(), "This releases home %s on %s: its mappings and domains are removed and its name goes.\nType the home's name (%s) to confirm: ", p.Cloud.Home, p.Cloud.URL, p.Cloud.Home)
				line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if strings.TrimSpace(line) != p.Cloud.Home {
					return errors.New("not confirmed: nothing released (type the home's name, or pass --yes)")
				}
			}
			archive, err := profile.Release(ctx, p, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "released home %s\nthe profile is archived in %s (keys and certificates kept)\n", p.Cloud.Home, archive)
			return nil
		},
	}
	c.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return c
}
