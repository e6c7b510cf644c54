package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func domainsCmd() *cobra.Command {
	c := &cobra.Command{Use: "domains", Short: "List, add and remove the home's base domains"}
	list := &cobra.Command{
		Use: "list", Short: "List base domains", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withProfile(cmd, func(ctx context.Context, s *session) error {
				ds, err := s.cloud.BaseDomains(ctx, s.p.Cloud.Home)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "DOMAIN\tADDED")
				for _, d := range ds {
					fmt.Fprintf(w, "%s\t%s\n", d.Domain, d.CreatedAt.Format("2006-01-02"))
				}
				return w.Flush()
			})
		},
	}
	add := &cobra.Command{
		Use: "add DOMAIN", Short: "Register a base domain (a domain you own, pointed at the cloud)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withProfile(cmd, func(ctx context.Context, s *session) error {
				d, err := s.cloud.AddBaseDomain(ctx, s.p.Cloud.Home, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "added base domain %s: names under it can now be exposed\n", d.Domain)
				return nil
			})
		},
	}
	rm := &cobra.Command{
		Use: "rm DOMAIN", Short: "Remove a base domain (refused while entries use it)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withProfile(cmd, func(ctx context.Context, s *session) error {
				if err := s.cloud.RemoveBaseDomain(ctx, s.p.Cloud.Home, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed base domain %s\n", args[0])
				return nil
			})
		},
	}
	c.AddCommand(list, add, rm)
	return c
}
