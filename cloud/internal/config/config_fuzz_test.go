package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"

	"homeport.dev/proto"
)

// FuzzParseFile feeds arbitrary bytes to `cloud serve` as DATA/cloud.yaml.
// What it accepts has every key set by a value as written (a scalar, or a
// list of scalars for a list flag: never an empty value, a mapping or a Go
// rendering of one like "<nil>" or "map[a:b]"), gives the same Config
// every time (keys are applied in map order), and is valid.
func FuzzParseFile(f *testing.F) {
	for _, s := range []string{
		"home-slots: 5\napi-addr: 127.0.0.1:7000\nssh-addr: 127.0.0.1:7022\n",
		"reserved-domains: [A.com, b.org]\nhaproxy: \"off\"\n",
		"reserved-domains:\n  - a.com\n  - b.org\npublic-host: Cloud.Example.NET\n",
		"tcp-ports: 10000-10099\ntcp-block: 10\nlog-level: debug\ndev: true\n",
		"data:\n", "public-host: {a: b}\n", "reserved-domains: [[a.com]]\n", "home-slots: [1, 2]\n",
		"config: other.yaml\n", "dev: yes\n", "auth-rate: 1e3\n", "a: &x 1\nb: *x\n", "- a\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file := filepath.Join(t.TempDir(), "cloud.yaml")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// Flags win over the file: these two keys of it are ignored.
		args := []string{"--config", file, "--haproxy", "off", "--shape-dev", "off"}
		c, err := Parse(args)
		if err != nil {
			return
		}
		var m map[string]yaml.Node
		if err := yaml.Unmarshal(data, &m); err != nil {
			t.Fatalf("Parse accepted a cloud.yaml that is not a YAML mapping: %v", err)
		}
		for k, n := range m {
			if k == "haproxy" || k == "shape-dev" {
				continue
			}
			if n.Kind == yaml.AliasNode {
				n = *n.Alias
			}
			items := []*yaml.Node{&n}
			if n.Kind == yaml.SequenceNode {
				items = n.Content
			}
			for _, it := range items {
				if it.Kind == yaml.AliasNode {
					it = it.Alias
				}
				if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
					t.Fatalf("Parse accepted %s: %s, which is not a value as written", k, proto.Printable(string(data)))
				}
			}
		}
		again, err := Parse(args)
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("the same cloud.yaml parsed twice: %+v, then %+v, %v", c, again, err)
		}
		for _, d := range c.ReservedDomains {
			if err := proto.ValidateHostname(d); err != nil {
				t.Fatalf("reserved domain %q accepted: %v", d, err)
			}
		}
		if err := c.TCPPorts.Validate(); err != nil || !filepath.IsAbs(c.Data) || c.HomesPerUser < 1 || c.AuthRate < 1 {
			t.Fatalf("accepted an invalid config %+v (%v)", c, err)
		}
	})
}
