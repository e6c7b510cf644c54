package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/profile"
)

func rotateKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-key",
		Short: "Replace the home's SSH key (its credential) with a new one",
		Long: `Replace the home's key: a new ed25519 key is written beside the old one
(KEY.new, 0600), the cloud is told with a request signed by the old key, and
only then does the new key replace the old file. If this is interrupted
after the cloud took the new key, the next home command or console start
finishes it. A running console reconnects with the new key at once; traffic
stops only for the reconnect.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := resolveProfile(cmd, configFlag)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			line, err := profile.RotateKey(ctx, p)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "home %s has a new key: %s\n  %s\n", p.Cloud.Home, p.KeyPath(), line)
			switch err := control.NewClient(p.SocketPath()).Rekey(ctx); {
			case err == nil:
				fmt.Fprintln(out, "the running console reconnected with it")
			case errors.Is(err, control.ErrNotRunning):
			default:
				return fmt.Errorf("the cloud and the profile have the new key, but the running console did not reconnect with it (%v): restart the console", err)
			}
			return nil
		},
	}
}
