package domains

import (
	"reflect"
	"strings"
	"testing"
)

func TestValidateBase(t *testing.T) {
	tests := []struct {
		d  string
		ok bool
	}{
		{"example.com", true},
		{"example.co.uk", true},
		{"alice.github.io", true},
		{"home1.example.com", true},
		{"app.test", true}, // unknown TLD: the default rule makes "test" the suffix
		{"com", false},
		{"co.uk", false},
		{"github.io", false},
		{"herokuapp.com", false}, // private section
		{"uk", false},
		{"example.com.", false},
		{"a;clear map x", false},
		{"exa mple.com", false},
		{"EXAMPLE.com", false},
		{"", false},
	}
	for _, tt := range tests {
		if err := ValidateBase(tt.d); (err == nil) != tt.ok {
			t.Errorf("ValidateBase(%q) = %v, want ok=%v", tt.d, err, tt.ok)
		}
	}
}

func TestOverlaps(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"example.com", "example.com", true},
		{"example.com", "a.example.com", true},
		{"a.b.example.com", "example.com", true},
		{"example.com", "badexample.com", false},
		{"example.com", "example.co", false},
		{"a.example.com", "b.example.com", false},
		{"example.com", "com.example", false},
	}
	for _, tt := range tests {
		if got := Overlaps(tt.a, tt.b); got != tt.want {
			t.Errorf("Overlaps(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		base, host string
		want       bool
	}{
		{"example.com", "example.com", true},
		{"example.com", "app.example.com", true},
		{"example.com", "a.b.example.com", true},
		{"example.com", "notexample.com", false},
		{"app.example.com", "example.com", false},
		{"example.com", "example.com.evil.net", false},
	}
	for _, tt := range tests {
		if got := Covers(tt.base, tt.host); got != tt.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tt.base, tt.host, got, tt.want)
		}
	}
}

func TestAncestors(t *testing.T) {
	if got, want := Ancestors("a.b.example.com"), []string{"b.example.com", "example.com", "com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Ancestors = %v, want %v", got, want)
	}
	if got := Ancestors("com"); got != nil {
		t.Errorf("Ancestors(com) = %v, want nil", got)
	}
}

func TestIPLiteral(t *testing.T) {
	for name, ip := range map[string]bool{
		"127.0.0.1": true, "1.2.3.4": true, "10.0.0.1": true, "0.0.0.0": true, "1.2.3.4.": true,
		"127.1": true, "example.123": true, "a.b.0": true, // a numeric last label: the PSL's "unknown TLD"
		"::1": true, "[::1]": true, "2001:db8::1": true, "::ffff:1.2.3.4": true, "fe80::1%eth0": true,
		"example.com": false, "1e100.net": false, "123.example.com": false, "1.2.3.com": false,
		"app.test": false, "x.0x7f": false, "": false,
	} {
		if err := IPLiteral(name); (err != nil) != ip {
			t.Errorf("IPLiteral(%q) = %v, want refused=%v", name, err, ip)
		}
	}
	if err := ValidateBase("1.2.3.4"); err == nil {
		t.Error("ValidateBase(1.2.3.4) accepted an IP address")
	}
}

func TestReserved(t *testing.T) {
	r := NewReserved("cloud.provider.net", "api.provider.net", "", []string{"Corp.Example", "127.0.0.1"})
	tests := []struct {
		name string
		want string // "" = allowed; else the start of the refusal
	}{
		{"cloud.provider.net", "cloud.provider.net is reserved: it is this cloud's public host"},
		{"x.cloud.provider.net", "x.cloud.provider.net is reserved: it is under cloud.provider.net, this cloud's public host"},
		{"provider.net", "provider.net is reserved: cloud.provider.net, this cloud's public host, is under it"},
		{"api.provider.net", "api.provider.net is reserved: it is this cloud's web and API host"},
		{"v1.api.provider.net", "v1.api.provider.net is reserved: it is under api.provider.net"},
		{"corp.example", "corp.example is reserved: it is reserved by this cloud's operator"},
		{"www.corp.example", "www.corp.example is reserved: it is under corp.example"},
		{"other.provider.net", ""},
		{"notprovider.net", ""},
		{"cloud.provider.network", ""},
		{"example.com", ""},
	}
	for _, tt := range tests {
		err := r.Check(tt.name)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Check(%q) = %v, want allowed", tt.name, err)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
			t.Errorf("Check(%q) = %v, want %q", tt.name, err, tt.want)
		}
	}
	if got := len(r.Names()); got != 3 {
		t.Errorf("reserved names = %v: the IP address should be skipped (IPLiteral refuses it anyway)", r.Names())
	}
	if err := NewReserved("127.0.0.1", "127.0.0.1", "", nil).Ownable("127.0.0.1"); err == nil {
		t.Error("an IP public host made its address ownable")
	}
}
