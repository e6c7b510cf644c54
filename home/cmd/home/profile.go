package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/profile"
	"homeport.dev/home/internal/store"
)

var configFlag string

// session is what most commands need: the profile, its database and a
// client of its cloud.
type session struct {
	p     *config.Profile
	db    *store.DB
	cloud *cloudapi.Client
}

// resolveProfile loads the profile flag (or HOME_CONFIG, or the only one)
// selects, telling the user what loading changed (an old profile's API
// token removed), and finishes a key rotation that was interrupted after
// the cloud took the new key.
func resolveProfile(cmd *cobra.Command, flag string) (*config.Profile, error) {
	p, err := profile.Resolve(flag)
	if err != nil {
		return nil, err
	}
	if p.Notice != "" {
		fmt.Fprintln(cmd.ErrOrStderr(), "home:", p.Notice)
	}
	if _, err := os.Stat(profile.PendingKeyPath(p)); err == nil {
		ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
		defer cancel()
		promoted, err := profile.RecoverKey(ctx, p)
		if err != nil {
			return nil, err
		}
		if promoted {
			fmt.Fprintf(cmd.ErrOrStderr(), "home: finished an interrupted key rotation: %s is the home's key now\n", p.KeyPath())
		}
	}
	return p, nil
}

// withProfile loads the selected profile and runs fn with it.
func withProfile(cmd *cobra.Command, fn func(ctx context.Context, s *session) error) error {
	p, err := resolveProfile(cmd, configFlag)
	if err != nil {
		return err
	}
	db := store.Open(p)
	client, err := p.CloudClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	return fn(ctx, &session{p: p, db: db, cloud: client})
}
