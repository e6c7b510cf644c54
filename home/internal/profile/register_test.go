package profile_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/profile"
	"homeport.dev/proto/testnet"
)

func TestMain(m *testing.M) { os.Exit(hometest.Main(m)) }

// mountEnv carries a cloud's URL and a token to the child process of
// TestRegisterIntoMountedVolume.
const mountEnv = "HOMEPORT_TEST_MOUNTED_VOLUME"

type cloudAccess struct{ URL, Token, Dir string }

// TestRegisterIntoMountedVolume: `home register --output /profile` where
// /profile is an empty mounted volume (a container's) writes the profile
// into it. A mount point can be neither removed nor replaced by a rename:
// registering used to fail with "remove /profile: device or resource busy".
// The child process mounts a tmpfs there in a mount namespace of its own.
func TestRegisterIntoMountedVolume(t *testing.T) {
	if env := os.Getenv(mountEnv); env != "" {
		var a cloudAccess
		if err := json.Unmarshal([]byte(env), &a); err != nil {
			t.Fatal(err)
		}
		// Mounts made here stay in this process's namespace.
		if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
			t.Fatalf("make / private: %v", err)
		}
		if err := syscall.Mount("tmpfs", a.Dir, "tmpfs", 0, "mode=0755"); err != nil {
			t.Fatalf("mount a volume on %s: %v", a.Dir, err)
		}
		registerInto(t, a)
		return
	}
	testnet.RequireRoot(t, "mounts a volume in a mount namespace of its own")
	c := hometest.Start(t, hometest.Options{})
	u := c.CreateUser(t, "alice")
	dir := filepath.Join(t.TempDir(), "profile")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	env, _ := json.Marshal(cloudAccess{URL: c.APIURL, Token: u.Token, Dir: dir})
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), mountEnv+"="+string(env), testnet.SkipLogEnv+"=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("with a volume mounted on %s:\n%s", dir, out)
	if err != nil {
		t.Fatalf("registering into a mounted volume failed: %v", err)
	}
}

// TestRegisterIntoEmptyDirectory: an existing empty --output directory is
// used as it is (same directory, now owner-only) and holds a working
// profile; a non-empty one is refused and left untouched.
func TestRegisterIntoEmptyDirectory(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	u := c.CreateUser(t, "alice")
	dir := filepath.Join(t.TempDir(), "profile")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	registerInto(t, cloudAccess{URL: c.APIURL, Token: u.Token, Dir: dir})
	after, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("the directory was replaced, not filled: a mounted volume cannot be")
	}

	// A second registration into the now non-empty directory is refused.
	u2 := c.CreateUser(t, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := os.ReadFile(filepath.Join(dir, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := profile.Register(ctx, profile.RegisterOptions{Cloud: c.APIURL, Token: u2.Token, Output: dir}); err == nil {
		t.Fatal("registering over an existing profile succeeded")
	}
	if now, err := os.ReadFile(filepath.Join(dir, config.FileName)); err != nil || string(now) != string(first) {
		t.Errorf("the existing profile changed: %v", err)
	}
}

// registerInto registers a home into a.Dir and checks the profile there.
func registerInto(t *testing.T, a cloudAccess) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, h, err := profile.Register(ctx, profile.RegisterOptions{Cloud: a.URL, Token: a.Token, Output: a.Dir})
	if err != nil {
		t.Fatal(err)
	}
	if p.Dir != a.Dir || h.Slug == "" {
		t.Errorf("profile in %s for home %q, want %s", p.Dir, h.Slug, a.Dir)
	}
	loaded, err := config.Load(a.Dir)
	if err != nil {
		t.Fatalf("the profile in %s does not load: %v", a.Dir, err)
	}
	if loaded.Cloud.Home != h.Slug {
		t.Errorf("profile's home %q, want %q", loaded.Cloud.Home, h.Slug)
	}
	st, err := os.Stat(a.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("profile directory mode %o, want 700", st.Mode().Perm())
	}
	for _, f := range []string{config.FileName, "id_ed25519", "id_ed25519.pub"} {
		if _, err := os.Stat(filepath.Join(a.Dir, f)); err != nil {
			t.Error(err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(a.Dir))
	for _, e := range entries {
		if e.Name() != filepath.Base(a.Dir) {
			t.Errorf("left beside the profile: %s", e.Name())
		}
	}
}

// TestRegisterRefusesClearTextToAnotherMachine: `home register --cloud
// http://` to another machine would send the API token and the home's
// credential readable across the network; it is refused before anything is
// sent (unless --insecure-http), and nothing is written.
func TestRegisterRefusesClearTextToAnotherMachine(t *testing.T) {
	out := filepath.Join(t.TempDir(), "profile")
	_, _, err := profile.Register(context.Background(), profile.RegisterOptions{
		Cloud: "http://203.0.113.7:8000", Token: "hp_secret", Output: out,
	})
	if err == nil || !regexp.MustCompile(`https://.*--insecure-http`).MatchString(err.Error()) {
		t.Fatalf("register over plain HTTP to another machine: %v; want a refusal naming https:// and --insecure-http", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused register left %s behind (%v)", out, err)
	}
}
