package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/profile"
)

func importCmd() *cobra.Command {
	var o profile.ImportOptions
	c := &cobra.Command{
		Use:   "import FILE --private-key K [--name NAME] [--output PATH] [--ca-file CA]",
		Short: "Create a profile for a home claimed in the web UI, from its client config",
		Long: `Create a profile for a home claimed elsewhere (the cloud's web UI), from the
client config the web UI offers (homeport-<slug>.yaml) and the home's
private key. The key must be the home's: its public key must be the file's,
and the cloud must accept requests signed with it now. The SSH host key
pinned is the file's, checked equal to the one the cloud's API gives.
The file holds no secret; no API token is needed or stored.`,
		Example: `  home import homeport-k3x9q2ab.yaml --private-key ~/.ssh/id_ed25519
  home import homeport-k3x9q2ab.yaml --private-key ./id_ed25519 --output ./my-home`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			o.Progress = func(format string, args ...any) { fmt.Fprintf(cmd.ErrOrStderr(), "... "+format+"\n", args...) }
			p, h, err := profile.Import(cmd.Context(), o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "imported home %s\n", h.Slug)
			fmt.Fprintf(out, "  profile        %s\n", p.Dir)
			fmt.Fprintf(out, "  ssh endpoint   %s@%s:%d (host key pinned)\n", h.SSH.User, h.SSH.Host, h.SSH.Port)
			fmt.Fprintf(out, "\nnext:\n  home --config %s expose http --to localhost:3000\n  home --config %s console\n", p.Dir, p.Dir)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.PrivateKey, "private-key", "", "the home's private key file (required)")
	f.StringVar(&o.Name, "name", "", "profile name (default: the cloud's host name, with -2, -3... when taken)")
	f.StringVar(&o.Output, "output", "", "profile directory (default: under $HOMEPORT_PROFILES or ~/.config/homeport)")
	f.StringVar(&o.CAFile, "ca-file", "", "PEM file of the CA that signs the cloud's certificate, when it is not publicly trusted (kept in the profile)")
	f.BoolVar(&o.InsecureHTTP, "insecure-http", false, "allow an http:// cloud URL on another machine (a trusted LAN only)")
	return c
}
