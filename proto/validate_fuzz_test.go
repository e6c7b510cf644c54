package proto

import (
	"strings"
	"testing"
)

// FuzzValidateHostname checks what the validator promises its callers (the
// HAProxy runtime socket, map files, paths, SQL): an accepted name is
// lowercase LDH of at most 253 characters in at least two labels of 1..63,
// with nothing a command parser could split on, and normalising it again
// changes nothing.
func FuzzValidateHostname(f *testing.F) {
	for _, s := range []string{"example.com", "a.b.example.co.uk", "xn--bcher-kva.example", "Example.com",
		"a;clear map x", "a\nclear.com", "example.com.", " example.com ", "1.2.3.4", "-a.example.com",
		strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateHostname(name) != nil {
			return
		}
		if len(name) > MaxHostnameLen {
			t.Fatalf("accepted %d characters", len(name))
		}
		if strings.ContainsAny(name, " \n\r\t;#\\\x00") {
			t.Fatalf("accepted %q with a separator", name)
		}
		if NormalizeHostname(name) != name {
			t.Fatalf("accepted %q, which normalises to something else", name)
		}
		labels := strings.Split(name, ".")
		if len(labels) < 2 {
			t.Fatalf("accepted the single label %q", name)
		}
		for _, l := range labels {
			if len(l) < 1 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
				t.Fatalf("accepted %q with the label %q", name, l)
			}
			for i := 0; i < len(l); i++ {
				if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
					t.Fatalf("accepted %q with the byte %q", name, c)
				}
			}
		}
	})
}

// FuzzParsePortRange checks that an accepted range is two valid ports in
// order, and that its String form parses back to the same range.
func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"10000-10099", "1-65535", " 80-80 ", "0-10", "10-5", "65535-65536", "-1-5", "+1-+5", "1-2-3", "a-b", "", "-", "080-090"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParsePortRange(s)
		if err != nil {
			return
		}
		if r.First < 1 || r.Last > 65535 || r.First > r.Last || r.Size() < 1 || !r.Contains(r.First) || !r.Contains(r.Last) {
			t.Fatalf("ParsePortRange(%q) accepted %+v", s, r)
		}
		back, err := ParsePortRange(r.String())
		if err != nil || back != r {
			t.Fatalf("ParsePortRange(%q) = %v, but its String %q parses to %v, %v", s, r, r.String(), back, err)
		}
	})
}
