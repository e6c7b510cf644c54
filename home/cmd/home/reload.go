package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/store"
)

func reloadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Have the running console pick up config.yaml's forwards now",
		Long: `Check config.yaml's forwards: and have the running console (or foreground
tunnel) take them now: it syncs them with the cloud and reconnects. A running
console also notices edits on its own within a second. An invalid edit is
refused with the field named (forwards[2].target: ...) and the forwards that
run stay as they were.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := resolveProfile(cmd, configFlag)
			if err != nil {
				return err
			}
			if _, err := store.Open(p).Entries(cmd.Context()); err != nil {
				return fmt.Errorf("%w\n(refused: nothing was changed)", err)
			}
			err = control.NewClient(p.SocketPath()).Reload(cmd.Context())
			switch {
			case errors.Is(err, control.ErrNotRunning):
				return fmt.Errorf("%w: `home sync-tunnels` applies config.yaml without one", err)
			case err != nil:
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "the running console took config.yaml's forwards")
			return nil
		},
	}
}
