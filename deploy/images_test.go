package deploy

import (
	"path/filepath"
	"regexp"
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
