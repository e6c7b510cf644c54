package main

import (
	"context"
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

// withProfile loads the selected profile and runs fn with it.
func withProfile(cmd *cobra.Command, fn func(ctx context.Context, s *session) error) error {
	p, err := profile.Resolve(configFlag)
	if err != nil {
		return err
	}
	db, err := store.Open(cmd.Context(), p.DBPath())
	if err != nil {
		return err
	}
	defer db.Close()
	client, err := p.CloudClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	return fn(ctx, &session{p: p, db: db, cloud: client})
}
