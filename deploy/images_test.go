package deploy

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestImagesMatchCompose: every image compose.yaml builds runs as the user
// the service names (a fresh named volume is a copy of the image's
// directory, so its owner must be the user that writes it), and the image
// creates each volume directory a service mounts owner-only and owned by
// that user, so the data directory starts 0700 before the cloud tightens
// anything itself.
func TestImagesMatchCompose(t *testing.T) {
	p := loadProject(t)
	users := map[string]string{} // image user by Dockerfile
	dirs := map[string][]string{}
	install := regexp.MustCompile(`install -d -m 0?700 -o (\S+) -g (\S+) (\S+)`)
	for _, s := range p.Services {
		if s.Build == nil {
			continue
		}
		file := filepath.Join(s.Build.Context, s.Build.Dockerfile)
		if _, ok := users[file]; !ok {
			stages := parseDockerfile(t, file)
			final := stages[len(stages)-1]
			for _, in := range final.Steps {
				switch in.Cmd {
				case "USER":
					users[file] = in.Args
				case "RUN":
					for _, m := range install.FindAllStringSubmatch(in.Args, -1) {
						dirs[file] = append(dirs[file], m[3])
					}
				}
			}
		}
		if users[file] != s.User {
			t.Errorf("%s runs as %q, its image (%s) as %q", s.Name, s.User, s.Build.Dockerfile, users[file])
		}
		for _, v := range s.Volumes {
			if v.Type != "volume" || strings.Contains(s.Build.Dockerfile, "haproxy") {
				continue // HAProxy's image only reads the volume the cloud's image made
			}
			found := false
			for _, d := range dirs[file] {
				found = found || d == v.Target
			}
			if !found {
				t.Errorf("%s: %s does not create %s 0700 for its user (install -d -m 0700 -o USER -g GROUP %s)", s.Name, s.Build.Dockerfile, v.Target, v.Target)
			}
		}
	}
	if len(users) == 0 {
		t.Fatal("compose.yaml builds no image")
	}
}

// TestImageAccountsAreNotSystemAccounts: an image's user and group with a
// fixed id of 1000 or more (10001, 10002: never a host's system account)
// are created as ordinary accounts. `useradd --system --uid 10001` warns
// in every build ("uid 10001 is greater than SYS_UID_MAX 999", seen when
// deploy/smoke.sh built the cloud's image with podman).
func TestImageAccountsAreNotSystemAccounts(t *testing.T) {
	add := regexp.MustCompile(`(useradd|groupadd)([^&;|]*)`)
	id := regexp.MustCompile(`--(?:uid|gid) (\d+)`)
	for _, name := range []string{"cloud", "home", "haproxy"} {
		stages := parseDockerfile(t, filepath.Join(repoRoot(t), "deploy", "Dockerfile."+name))
		for _, in := range stages[len(stages)-1].Steps {
			if in.Cmd != "RUN" {
				continue
			}
			for _, m := range add.FindAllStringSubmatch(in.Args, -1) {
				n := id.FindStringSubmatch(m[2])
				if n == nil || !strings.Contains(m[2], "--system") {
					continue
				}
				if v, _ := strconv.Atoi(n[1]); v >= 1000 {
					t.Errorf("Dockerfile.%s: %s%s: --system with id %s (system ids end at 999)", name, m[1], m[2], n[1])
				}
			}
		}
	}
}
