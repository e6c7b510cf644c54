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

const commented = `forwards:
  # the blog, keep it first
  - scheme: https
    host: blog.example.com # my blog
    target: localhost:3000
  - scheme: tcp # ssh
    public_port: 10001
    target: localhost:22
# trailing notes
`

// TestEditForwardsKeepsTheUsersFile: adding, closing and removing forwards
// keeps every comment, the order of the file and its indentation, and
// replaces the file atomically (a reader holding the old one sees it
// whole) with mode 0600.
func TestEditForwardsKeepsTheUsersFile(t *testing.T) {
	p := configtest.Profile(t, commented)
	file := p.ConfigPath()
	old, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	before, _ := os.ReadFile(file)
	err = config.EditForwards(file, func(e *config.ForwardsEdit) error {
		if i := e.Index("tcp:10001"); i != 1 {
			t.Errorf("Index(tcp:10001) = %d, want 1", i)
		}
		e.SetEnabled(1, false)
		return e.Append(config.Forward{Scheme: "http", Host: "web.example.com", Target: "localhost:8080"})
	})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(file)
	for _, keep := range []string{"# my home", "# the blog, keep it first", "# my blog", "# ssh", "# trailing notes", "\n  url: http://127.0.0.1:8000\n"} {
		if !strings.Contains(string(after), keep) {
			t.Errorf("the edit lost %q:\n%s", keep, after)
		}
	}
	order := []string{"version:", "name:", "cloud:", "key:", "certs_dir:", "console:", "features:", "forwards:", "blog.example.com", "public_port: 10001", "enabled: false", "web.example.com"}
	last := -1
	for _, k := range order {
		i := strings.Index(string(after), k)
		if i < last {
			t.Errorf("%q moved (order not kept):\n%s", k, after)
		}
		last = i
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", st.Mode().Perm())
	}
	held := make([]byte, len(before)+100)
	n, _ := old.ReadAt(held, 0)
	if string(held[:n]) != string(before) {
		t.Error("the file was rewritten in place, not replaced: a reader saw a partial edit")
	}
	if left, _ := filepath.Glob(filepath.Join(p.Dir, ".config.yaml.tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	fs, err := config.ReadForwards(file)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{}
	for _, f := range fs {
		keys = append(keys, f.Key()+":"+map[bool]string{true: "open", false: "closed"}[f.IsEnabled()])
	}
	if want := []string{"https://blog.example.com:open", "tcp:10001:closed", "http://web.example.com:open"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("forwards after the edit %v, want %v", keys, want)
	}
	// Open again and remove the first: its comment goes with it, the rest stay.
	err = config.EditForwards(file, func(e *config.ForwardsEdit) error {
		e.SetEnabled(1, true)
		e.Remove(0)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after, _ = os.ReadFile(file)
	if strings.Contains(string(after), "blog") || !strings.Contains(string(after), "# ssh") || !strings.Contains(string(after), "enabled: true") {
		t.Errorf("after removing the first forward:\n%s", after)
	}
	// Saving the profile (console --set-password) keeps the forwards as the
	// file holds them, not as they were loaded.
	p.Console.PasswordHash = "x"
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	if fs, err := config.ReadForwards(file); err != nil || len(fs) != 2 || fs[0].Key() != "tcp:10001" {
		t.Errorf("after Save: %v %v", fs, err)
	}
}

// TestReadForwardsNamesTheField: a hand edit that breaks a forward is
// refused with the forward and field named, like the rest of config.yaml.
func TestReadForwardsNamesTheField(t *testing.T) {
	tests := map[string]struct{ forward, want string }{
		"target":           {"scheme: http\n    host: a.example.com\n    target: localhost:99999", "forwards[1].target: target port \"99999\" must be 1-65535"},
		"lan target":       {"scheme: http\n    host: a.example.com\n    target: 192.168.1.5:80", "forwards[1].target: target \"192.168.1.5:80\" is not on this machine"},
		"scheme":           {"scheme: ftp\n    host: a.example.com\n    target: localhost:21", "forwards[1].scheme:"},
		"host":             {"scheme: https\n    host: a;b.example.com\n    target: localhost:1", "forwards[1].host:"},
		"no host":          {"scheme: http\n    target: localhost:1", "forwards[1].host:"},
		"public port":      {"scheme: tcp\n    public_port: 0\n    target: localhost:1", "forwards[1].public_port:"},
		"private name":     {"scheme: tcp\n    private: true\n    name: Bad Name\n    target: localhost:1", "forwards[1].name:"},
		"mode":             {"scheme: https\n    host: a.example.com\n    mode: magic\n    target: localhost:1", "forwards[1].mode:"},
		"deploy path":      {"scheme: https\n    host: a.example.com\n    deploy_path: certs\n    target: localhost:1", "forwards[1].deploy_path:"},
		"duplicate":        {"scheme: tcp\n    public_port: 10001\n    target: localhost:2", "forwards[1]: tcp:10001 is already forwards[0]"},
		"typo in a key":    {"scheme: http\n    host: a.example.com\n    tagret: localhost:1", "forwards[1].tagret (line 24): unknown field"},
		"wrong type":       {"scheme: tcp\n    public_port: many\n    target: localhost:1", "forwards[1].public_port (line 23): cannot unmarshal !!str `many` into int"},
		"enabled not bool": {"scheme: http\n    host: a.example.com\n    target: localhost:1\n    enabled: perhaps", "forwards[1].enabled (line 25): cannot unmarshal"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := configtest.Profile(t, "forwards:\n  - scheme: tcp\n    public_port: 10001\n    target: localhost:22\n  - "+tt.forward+"\n")
			_, err := config.ReadForwards(p.ConfigPath())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			// The rest of the profile still loads: the refusal is the
			// forwards' alone (a running console keeps what it serves).
			if _, err := config.Load(p.Dir); err != nil {
				t.Errorf("Load failed on a forwards problem: %v", err)
			}
		})
	}
	// Several problems at once are all named.
	p := configtest.Profile(t, "forwards:\n  - scheme: http\n    target: x\n  - scheme: tcp\n    target: localhost:1\n")
	_, err := config.ReadForwards(p.ConfigPath())
	for _, want := range []string{"forwards[0].host:", "forwards[1].public_port:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to name %s", err, want)
		}
	}
}
