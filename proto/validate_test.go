package proto

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidateHostname(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		name string
		ok   bool
	}{
		{"example.com", true},
		{"a.b.example.co.uk", true},
		{"xn--bcher-kva.example", true},
		{"a-b.example.com", true},
		{long + "." + long + "." + long + "." + strings.Repeat("a", 61), true},  // 253
		{long + "." + long + "." + long + "." + strings.Repeat("a", 62), false}, // 254
		{"", false},
		{"com", false},
		{"example.com.", false},
		{"Example.com", false},
		{"a;clear map x", false},
		{"a b.com", false},
		{"a\nclear.com", false},
		{"a\tb.com", false},
		{"bücher.example", false},
		{"-a.example.com", false},
		{"a-.example.com", false},
		{"a..example.com", false},
		{".example.com", false},
		{"a_b.example.com", false},
		{"*.example.com", false},
		{strings.Repeat("a", 64) + ".com", false},
		{"example.com:80", false},
		{"a#b.com", false},
	}
	for _, tt := range tests {
		err := ValidateHostname(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateHostname(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\n\t") {
			t.Errorf("error for %q contains a raw control character: %q", tt.name, err)
		}
	}
}

func TestValidateUsername(t *testing.T) {
	for name, ok := range map[string]bool{
		"alice": true, "a": true, "a_b-9": true, strings.Repeat("a", 32): true,
		"": false, "Alice": false, "a b": false, "a;b": false, strings.Repeat("a", 33): false, "é": false, "a\n": false,
	} {
		if err := ValidateUsername(name); (err == nil) != ok {
			t.Errorf("ValidateUsername(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestValidateMappingName(t *testing.T) {
	for name, ok := range map[string]bool{
		"gpu-ui": true, "a": true, "9": true, "private-42": true, strings.Repeat("a", 32): true,
		"": false, "GPU": false, "-a": false, "a-": false, "a_b": false, "a.b": false, "a/b": false,
		"a b": false, strings.Repeat("a", 33): false, "é": false, "a\n": false,
	} {
		if err := ValidateMappingName(name); (err == nil) != ok {
			t.Errorf("ValidateMappingName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestValidateEmail(t *testing.T) {
	for addr, ok := range map[string]bool{
		"a@example.com": true, "a.b+c@example.co.uk": true,
		"": false, "a": false, "A <a@example.com>": false, "a@example.com\n": false, " a@example.com": false,
	} {
		if err := ValidateEmail(addr); (err == nil) != ok {
			t.Errorf("ValidateEmail(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in   string
		want PortRange
		ok   bool
	}{
		{"10000-10099", PortRange{10000, 10099}, true},
		{"1-65535", PortRange{1, 65535}, true},
		{"80-80", PortRange{80, 80}, true},
		{"0-10", PortRange{}, false},
		{"10-65536", PortRange{}, false},
		{"20-10", PortRange{}, false},
		{"10", PortRange{}, false},
		{"a-b", PortRange{}, false},
	}
	for _, tt := range tests {
		got, err := ParsePortRange(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParsePortRange(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestOptionalDistinguishesAbsentFromNull(t *testing.T) {
	tests := []struct {
		body    string
		set     bool
		wantNil bool
		want    int64
	}{
		{`{}`, false, true, 0},
		{`{"bandwidth_limit_kbps":null}`, true, true, 0},
		{`{"bandwidth_limit_kbps":500}`, true, false, 500},
	}
	for _, tt := range tests {
		var r PatchHomeRequest
		if err := json.Unmarshal([]byte(tt.body), &r); err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		o := r.BandwidthLimitKbps
		if o.Set != tt.set || (o.Value == nil) != tt.wantNil || (o.Value != nil && *o.Value != tt.want) {
			t.Errorf("%s: got set=%v value=%v", tt.body, o.Set, o.Value)
		}
	}
	var r PatchHomeRequest
	if err := json.Unmarshal([]byte(`{"bandwidth_limit_kbps":"fast"}`), &r); err == nil {
		t.Errorf("a string limit must not decode")
	}
}
