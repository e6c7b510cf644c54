package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/profile"
)

func registerCmd() *cobra.Command {
	var o profile.RegisterOptions
	c := &cobra.Command{
		Use:   "register --cloud URL --token TOKEN [--home SLUG] [--name NAME] [--output PATH] [--private-key K [--public-key P]] [--ca-file CA]",
		Short: "Claim a home on a cloud (or adopt one you claimed) and create a profile for it",
		Long: `Claim a home on a cloud with an API token and write a new profile directory:
config.yaml (0600), the SSH key pair, the database and a certs directory.

The token is used for this command only and never stored: from then on the
home signs its requests with its own key, so rotating or revoking your API
tokens does not affect it.

The cloud's SSH host key is pinned from the API's answer (no trust on first
use). A new ed25519 key is generated unless --private-key names an existing
key (its public key is derived; --public-key, if given, must be its pair).
With --home SLUG, or when you already have a home with that key (claimed in
the web UI, say), that home is adopted instead of claiming another. If
anything fails after a new claim, the claim is released again; an existing
profile is never overwritten.`,
		Example: `  home register --cloud https://cloud.example.com --token hp_...
  home register --cloud http://127.0.0.1:8000 --token hp_... --output ./my-home
  home register --cloud https://cloud.example.com --token hp_... --home k3x9q2ab --private-key ~/.ssh/id_ed25519
  home register --cloud https://cloud.lan --token hp_... --ca-file my-ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Token == "" {
				o.Token = os.Getenv("HOMEPORT_TOKEN")
			}
			if o.Cloud == "" || o.Token == "" {
				return fmt.Errorf("--cloud and --token are required (the token can also come from HOMEPORT_TOKEN)")
			}
			o.Progress = func(format string, args ...any) { fmt.Fprintf(cmd.ErrOrStderr(), "... "+format+"\n", args...) }
			p, h, err := profile.Register(cmd.Context(), o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "registered home %s\n", h.Slug)
			fmt.Fprintf(out, "  credential     the home's own key (%s); your API token is not stored\n", p.KeyPath())
			fmt.Fprintf(out, "  profile        %s\n", p.Dir)
			fmt.Fprintf(out, "  ssh endpoint   %s@%s:%d (host key pinned)\n", h.SSH.User, h.SSH.Host, h.SSH.Port)
			fmt.Fprintf(out, "  tunnel ports   %s\n", h.TunnelPorts)
			fmt.Fprintf(out, "  public tcp     %s\n", h.TCPPorts)
			fmt.Fprintf(out, "\nnext:\n  home --config %s domains add example.com\n  home --config %s expose https app.example.com --to localhost:3000\n  home --config %s console\n", p.Dir, p.Dir, p.Dir)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.Cloud, "cloud", "", "the cloud's URL, e.g. https://cloud.example.com")
	f.StringVar(&o.Token, "token", "", "an API token of your cloud account (or HOMEPORT_TOKEN); used once, never stored")
	f.StringVar(&o.Home, "home", "", "adopt this home, already claimed by you (needs its --private-key)")
	f.StringVar(&o.Name, "name", "", "profile name (default: the cloud's host name, with -2, -3... when taken)")
	f.StringVar(&o.Output, "output", "", "profile directory (default: under $HOMEPORT_PROFILES or ~/.config/homeport)")
	f.StringVar(&o.PrivateKey, "private-key", "", "use this existing private key file (the home's, to adopt it)")
	f.StringVar(&o.PublicKey, "public-key", "", "optional: its public key file, checked to be the private key's pair")
	f.BoolVar(&o.InsecureHTTP, "insecure-http", false, "allow an http:// cloud URL on another machine (token and credentials in clear; a trusted LAN only)")
	f.StringVar(&o.CAFile, "ca-file", "", "PEM file of the CA that signs the cloud's certificate, when it is not publicly trusted (kept in the profile)")
	return c
}
