//go:build !unix

package config

import "context"

// lockFile is a no-op where there are no advisory file locks: syncs are
// still serialised within the process.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
