package haproxy

import (
	"errors"
	"strings"
	"testing"
)

func TestEntryValidate(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	max253 := strings.Repeat(long63+".", 3) + strings.Repeat("b", 61) // 253 chars
	tests := []struct {
		key, value string
		ok         bool
	}{
		{"app.example.com", "20001", true},
		{"a", "1", true},
		{"xn--bcher-kva.example", "65535", true},
		{"1.2.3.4", "80", true},
		{"10001", "20003", true},
		{"a-b.c-d.e", "443", true},
		{long63 + ".com", "1", true},
		{max253, "1", true},
		{max253 + "b", "1", false},
		{long63 + "a.com", "1", false},
		{"", "1", false},
		{"App.example.com", "1", false},
		{"-a.com", "1", false},
		{"a-.com", "1", false},
		{"a..com", "1", false},
		{".a.com", "1", false},
		{"a.com.", "1", false},
		{"*.a.com", "1", false},
		{"a_b.com", "1", false},
		{"a b", "1", false},
		{"a;b", "1", false},
		{"a\nb", "1", false},
		{"a#b", "1", false},
		{"a\\b", "1", false},
		{"0", "1", false},
		{"080", "1", false},
		{"65536", "1", false},
		{"a.com", "", false},
		{"a.com", "0", false},
		{"a.com", "00080", false},
		{"a.com", "65536", false},
		{"a.com", "-1", false},
		{"a.com", "80 ", false},
		{"a.com", "8O", false},
		{"a.com", "99999999999999999999", false},
	}
	for _, tt := range tests {
		err := Entry{tt.key, tt.value}.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("Entry{%q, %q}.Validate() = %v, want ok=%v", tt.key, tt.value, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Entry{%q, %q}.Validate() = %v, want ErrInvalid", tt.key, tt.value, err)
		}
	}
}

func TestValidateMapName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"/var/lib/homeport/haproxy/https.map", true},
		{"#0", true},
		{"#12", true},
		{"#", false},
		{"#1a", false},
		{"https", false},
		{"https.map", false},
		{"/a b.map", false},
		{"/a;clear map /a", false},
		{"/a\n", false},
		{"@1", false},
		{"", false},
	}
	for _, tt := range tests {
		if err := validateMapName(tt.name); (err == nil) != tt.ok {
			t.Errorf("validateMapName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
