package domains

import (
	"reflect"
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
