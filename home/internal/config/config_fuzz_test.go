package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load as config.yaml. What it accepts
// must be valid, and must survive Save: loading the saved file gives the
// same configuration (the console and `home` commands save profiles they
// loaded, so a value that changes on the way would change a setting).
func FuzzLoad(f *testing.F) {
	f.Add([]byte(goodYAML))
	f.Add([]byte(goodYAML + "acme:\n  ca_url: letsencrypt-staging\n  email: a@example.com\n  deploy_path: /srv/certs\n"))
	f.Add([]byte("version: 1\nname: x\n"))
	f.Add([]byte("{}"))
	f.Add([]byte("- a\n- b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := Load(dir)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Load accepted a config that Validate refuses: %v", err)
		}
		if err := p.Save(); err != nil {
			t.Fatalf("Load accepted a config that Save refuses: %v", err)
		}
		again, err := Load(dir)
		if err != nil {
			t.Fatalf("the saved config does not load: %v", err)
		}
		if !reflect.DeepEqual(again.Config, p.Config) {
			t.Fatalf("saved and loaded again, the config changed:\n%+v\n%+v", p.Config, again.Config)
		}
	})
}
