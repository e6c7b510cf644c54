// Command home is homeport's agent and console for the machine behind NAT:
// it registers with a cloud, keeps one SSH tunnel up and serves a dashboard.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/keys"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto/sysmon"
)

func main() {
	tunnel.UseAgentProcs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "home:", err)
		os.Exit(1)
	}
}

// keepPolling runs the command again with Go's monitor thread kept from
// deep sleep (proto/sysmon), first thing in the commands that carry the
// tunnel, before they change anything. If that fails the command goes on
// as it is.
func keepPolling() {
	if err := sysmon.KeepPolling(); err != nil {
		logger().Warn("running with Go's default monitor thread, which costs CPU per connection", "err", err)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "home",
		Short:         "homeport's home agent: expose servers behind NAT through your own cloud",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&configFlag, "config", "", "profile directory or its config.yaml (default: $HOME_CONFIG, or the only profile)")
	root.AddCommand(keygenCmd(), registerCmd(), upCmd(), consoleCmd(), syncCmd(), statusCmd(), domainsCmd(), exposeCmd(), forwardsCmd(), limitCmd(), connectCmd(), certsCmd(), importCmd(), releaseCmd(), rotateKeyCmd(), reloadCmd())
	return root
}

func keygenCmd() *cobra.Command {
	var output string
	var force bool
	c := &cobra.Command{
		Use:   "keygen [--output PATH] [--force]",
		Short: "Create the ed25519 key pair that identifies a home to its cloud",
		Long: `Create an ed25519 key pair: PATH (private, mode 0600) and PATH.pub.
Prints the public key, which is what a cloud's POST /api/v1/homes takes.
Never overwrites an existing key unless --force is given; never prompts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, _ := os.Hostname()
			line, err := keys.Generate(output, "homeport@"+host, force)
			if err != nil {
				return err
			}
			abs, _ := filepath.Abs(output)
			fmt.Fprintln(cmd.OutOrStdout(), line)
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (private, 0600) and %s.pub\n", abs, abs)
			return nil
		},
	}
	c.Flags().StringVar(&output, "output", "id_ed25519", "where to write the private key; the public key goes to PATH.pub")
	c.Flags().BoolVar(&force, "force", false, "replace an existing key")
	return c
}
