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

// TestSharedHost: under the shared domain a home may publish SLUG.SHARED
// and LABEL-SLUG.SHARED, one label deep, and nothing of another home's.
func TestSharedHost(t *testing.T) {
	r := NewReserved("cloud.example.net", "api.homes.example.net", "homes.example.net", []string{"status-abc.homes.example.net"})
	tests := []struct {
		host, slug string
		under      bool
		want       string // "" = allowed; else part of the refusal
	}{
		{"abc.homes.example.net", "abc", true, ""},
		{"app-abc.homes.example.net", "abc", true, ""},
		{"my-app-abc.homes.example.net", "abc", true, ""},
		{"2-abc.homes.example.net", "abc", true, ""},
		{"app-xyz.homes.example.net", "abc", true, "is a name of home xyz"},
		{"xyz.homes.example.net", "abc", true, "is a name of home xyz"},
		{"abc-xyz.homes.example.net", "abc", true, "is a name of home xyz"},
		{"app.abc.homes.example.net", "abc", true, "more than one label below"},
		{"status-abc.homes.example.net", "abc", true, "reserved by this cloud's operator"},
		{"api.homes.example.net", "api", true, "this cloud's web and API host"},
		{strings.Repeat("a", 60) + "-abc.homes.example.net", "abc", true, "too long"},
		{"homes.example.net", "abc", false, ""}, // the domain itself: Ownable refuses it
		{"abc.example.net", "abc", false, ""},
		{"abc.otherhomes.example.net", "abc", false, ""},
	}
	for _, tt := range tests {
		under, err := r.SharedHost(tt.host, tt.slug)
		if under != tt.under {
			t.Errorf("SharedHost(%s, %s): under = %v, want %v", tt.host, tt.slug, under, tt.under)
		}
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("SharedHost(%s, %s) = %v, want allowed", tt.host, tt.slug, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("SharedHost(%s, %s) = %v, want %q", tt.host, tt.slug, err, tt.want)
		}
	}
	if err := NewReserved("", "", "homes.example.net", nil).Ownable("homes.example.net"); err == nil || !strings.Contains(err.Error(), "shared domain") {
		t.Errorf("the shared domain itself: %v, want it reserved", err)
	}
	if err := r.Ownable("example.net"); err == nil {
		t.Errorf("a parent of the shared domain is ownable")
	}
	if _, err := NewReserved("", "", "", nil).SharedHost("abc.homes.example.net", "abc"); err != nil {
		t.Errorf("without a shared domain: %v", err)
	}
	// The shared domain under the cloud's own name: the cloud's name does not
	// refuse the homes' names below it.
	inside := NewReserved("cloud.example.net", "", "homes.cloud.example.net", nil)
	if under, err := inside.SharedHost("abc.homes.cloud.example.net", "abc"); !under || err != nil {
		t.Errorf("shared domain under the public host: %v %v, want allowed", under, err)
	}
}

func TestRegistered(t *testing.T) {
	for host, want := range map[string]string{
		"app.example.com":           "example.com",
		"example.com":               "example.com",
		"a.b.example.co.uk":         "example.co.uk",
		"abc.homes.example.net":     "example.net",
		"x-abc.user.github.io":      "user.github.io",
		"deep.x-abc.user.github.io": "user.github.io",
	} {
		if got, err := Registered(host); err != nil || got != want {
			t.Errorf("Registered(%s) = %q, %v; want %q", host, got, err, want)
		}
	}
	if got, err := Registered("com"); err == nil {
		t.Errorf("Registered(com) = %q, want an error (a public suffix)", got)
	}
}
