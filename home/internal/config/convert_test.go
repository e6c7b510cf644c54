package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/config/configtest"
)

// oldProfile is a profile as homes wrote it before forwards: moved into
// config.yaml: database: home.db and the entries database written by the
// gorm store (testdata/legacy/KIND, made with that code).
func oldProfile(t *testing.T, kind string) string {
	t.Helper()
	dir := t.TempDir()
	yaml := strings.Replace(configtest.YAML(""), "key: id_ed25519\n", "key: id_ed25519\ndatabase: home.db # the entries\n", 1)
	if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "legacy", kind, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600)
	}
	return dir
}

// TestOldProfileIsConverted: every entry of an old profile's database
// (one closed, one with a deploy path, a tcp one with the PROXY header, a
// private one, one with a sync error, IDs with a gap), also one whose rows
// are only in the write-ahead log, becomes a forward of config.yaml in the
// same order; what the cloud assigned goes to the cache; the database is
// kept as home.db.bak (with its log); database: is gone; the user is told
// once.
func TestOldProfileIsConverted(t *testing.T) {
	for _, kind := range []string{"clean", "wal"} {
		t.Run(kind, func(t *testing.T) {
			dir := oldProfile(t, kind)
			p, err := config.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p.Notice, "converted home.db: its 6 forwards are in") || !strings.Contains(p.Notice, "home.db.bak") {
				t.Errorf("notice: %q", p.Notice)
			}
			b, _ := os.ReadFile(p.ConfigPath())
			if strings.Contains(string(b), "database") || !strings.Contains(string(b), "# my home") {
				t.Errorf("config.yaml after the conversion:\n%s", b)
			}
			fs, err := config.ReadForwards(p.ConfigPath())
			if err != nil {
				t.Fatal(err)
			}
			off := false
			want := []config.Forward{
				{Scheme: "https", Host: "app.example.com", Target: "localhost:3000", Mode: "terminate"},
				{Scheme: "https", Host: "git.example.com", Target: "localhost:8443", Mode: "passthrough", DeployPath: "/etc/ssl/git"},
				{Scheme: "http", Host: "web.example.com", Target: "localhost:3000", Enabled: &off},
				{Scheme: "tcp", PublicPort: 10001, Target: "localhost:22", ProxyProtocol: true},
				{Scheme: "tcp", Private: true, Name: "gpu-ui", Target: "127.0.0.1:7860"},
				{Scheme: "http", Host: "blog-h1.homes.example.net", Target: "localhost:8080"},
			}
			if !reflect.DeepEqual(fs, want) {
				t.Errorf("forwards:\n got  %+v\n want %+v", fs, want)
			}
			cache := config.ReadCache(p.CachePath())
			wantCache := map[string]config.Assigned{
				"https://app.example.com": {MappingID: 11, TunnelPort: 20016},
				"https://git.example.com": {MappingID: 12, TunnelPort: 20017},
				"http://web.example.com":  {SyncError: "cloud said no"},
				"tcp:10001":               {MappingID: 14, TunnelPort: 20019},
				"private:gpu-ui":          {MappingID: 15, TunnelPort: 20020},
			}
			if !reflect.DeepEqual(cache, wantCache) {
				t.Errorf("cache:\n got  %+v\n want %+v", cache, wantCache)
			}
			if _, err := os.Stat(filepath.Join(dir, "home.db")); err == nil {
				t.Error("home.db is still there")
			}
			if _, err := os.Stat(filepath.Join(dir, "home.db.bak")); err != nil {
				t.Errorf("no backup: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "home.db.bak-wal")); (err == nil) != (kind == "wal") {
				t.Errorf("the backup's write-ahead log: %v", err)
			}
			for _, f := range []string{p.ConfigPath(), p.CachePath()} {
				if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %o", f, st.Mode().Perm())
				}
			}
			again, err := config.Load(dir)
			if err != nil || again.Notice != "" {
				t.Errorf("second load: notice %q, %v", again.Notice, err)
			}
		})
	}
}

// TestConversionFinishesAfterAnInterruption: a conversion cut after
// config.yaml was written (home.db still there) does not add the forwards
// twice, and sets the database aside.
func TestConversionFinishesAfterAnInterruption(t *testing.T) {
	dir := oldProfile(t, "clean")
	if _, err := config.Load(dir); err != nil {
		t.Fatal(err)
	}
	os.Rename(filepath.Join(dir, "home.db.bak"), filepath.Join(dir, "home.db"))
	p, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fs, err := config.ReadForwards(p.ConfigPath()); err != nil || len(fs) != 6 {
		t.Fatalf("after a second conversion: %d forwards, %v", len(fs), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "home.db")); err == nil {
		t.Error("home.db is still there")
	}
}

// TestUnreadableOldDatabaseChangesNothing: a damaged database stops the
// load with what happened, and the profile stays as it was.
func TestUnreadableOldDatabaseChangesNothing(t *testing.T) {
	dir := oldProfile(t, "clean")
	os.WriteFile(filepath.Join(dir, "home.db"), []byte("SQLite format 3\x00 and then garbage"), 0o600)
	before, _ := os.ReadFile(filepath.Join(dir, config.FileName))
	_, err := config.Load(dir)
	if err == nil || !strings.Contains(err.Error(), "the profile is unchanged") {
		t.Fatalf("got %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, config.FileName))
	if string(before) != string(after) {
		t.Error("config.yaml changed")
	}
}
