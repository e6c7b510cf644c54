package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"

	"homeport.dev/home/internal/legacydb"
)

// convertDatabase moves the entries of the database that profiles kept
// before config.yaml held the forwards (database: home.db) into forwards:,
// what the cloud assigned to them into the cache, and keeps the database as
// a backup (home.db.bak). It runs once, on the first load by a home that
// knows forwards:, under the profile's writer lock; the steps are ordered so
// that an interruption is finished by the next load: the cache first, then
// config.yaml (without database:, forwards already there are not added
// twice), then the rename.
func convertDatabase(p *Profile, rel string) (string, error) {
	if rel == "" {
		rel = "home.db"
	}
	dbPath := p.Path(rel)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unlock, err := p.Lock(ctx)
	if err != nil {
		return "", fmt.Errorf("converting %s: %w", dbPath, err)
	}
	defer unlock()
	var rows []legacydb.Row
	switch _, err := os.Stat(dbPath); {
	case errors.Is(err, fs.ErrNotExist):
		// Converted by another process meanwhile, or copied without it.
	case err != nil:
		return "", err
	default:
		if rows, err = legacydb.ReadTable(dbPath, "entries"); err != nil {
			return "", fmt.Errorf("converting the entries database into config.yaml's forwards: %w (the profile is unchanged; a copy of it with home.db from before may help)", err)
		}
	}
	var fs []Forward
	cache := ReadCache(p.CachePath())
	for _, r := range rows {
		f, a := forwardOfRow(r)
		fs = append(fs, f)
		if a != (Assigned{}) {
			cache[f.Key()] = a
		}
	}
	if len(fs) > 0 {
		if err := WriteCache(p.CachePath(), cache); err != nil {
			return "", err
		}
	}
	added := 0
	err = EditForwards(p.ConfigPath(), func(e *ForwardsEdit) error {
		e.removeKey("database")
		for _, f := range fs {
			if e.Index(f.Key()) < 0 {
				if err := e.Append(f); err != nil {
					return err
				}
				added++
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("converting %s into config.yaml's forwards: %w", dbPath, err)
	}
	if rows == nil {
		return fmt.Sprintf("removed database: from %s: the forwards live in its forwards: list now", p.ConfigPath()), nil
	}
	backup, err := keepAsBackup(dbPath)
	if err != nil {
		return "", fmt.Errorf("the forwards of %s are in config.yaml now, but the database could not be set aside: %w", dbPath, err)
	}
	return fmt.Sprintf("converted %s: its %d forwards are in %s (forwards:), what the cloud assigned in %s; the database is kept as %s",
		rel, added, p.ConfigPath(), CacheFile, backup), nil
}

// keepAsBackup renames the database (and its write-ahead log, which holds
// committed rows too) to the first free name.bak, name.bak2, ...
func keepAsBackup(path string) (string, error) {
	backup := path + ".bak"
	for n := 2; ; n++ {
		if _, err := os.Lstat(backup); errors.Is(err, fs.ErrNotExist) {
			break
		}
		backup = path + ".bak" + strconv.Itoa(n)
	}
	if err := os.Rename(path+"-wal", backup+"-wal"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.Rename(path, backup); err != nil {
		return "", err
	}
	os.Remove(path + "-shm")       // SQLite's shared-memory index, rebuilt from the log
	os.Remove(path + ".sync-lock") // the old store's lock file
	return backup, nil
}

// forwardOfRow is one row of the old entries table.
func forwardOfRow(r legacydb.Row) (Forward, Assigned) {
	f := Forward{
		Scheme: text(r["scheme"]), Host: text(r["host"]), PublicPort: int(integer(r["public_port"])),
		Private: integer(r["private"]) != 0, Name: text(r["name"]), Target: text(r["target"]),
		Mode: text(r["mode"]), ProxyProtocol: integer(r["proxy_protocol"]) != 0, DeployPath: text(r["deploy_path"]),
	}
	if v, ok := r["enabled"]; ok && v != nil && integer(v) == 0 {
		off := false
		f.Enabled = &off
	}
	return f, Assigned{MappingID: uint64(integer(r["mapping_id"])), TunnelPort: int(integer(r["tunnel_port"])), SyncError: text(r["sync_error"])}
}

func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// integer reads SQLite's integers, and booleans however they were bound
// (1/0, or "true"/"false" as text).
func integer(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	case string:
		if b, err := strconv.ParseBool(v); err == nil && b {
			return 1
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}
