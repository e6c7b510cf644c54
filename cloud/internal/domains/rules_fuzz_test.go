package domains

import (
	"net"
	"slices"
	"strings"
	"testing"

	"homeport.dev/proto"
)

// FuzzRules checks the laws the overlap rule relies on: Covers is reflexive
// and antisymmetric, Overlaps is symmetric, and for valid names Covers(a, b)
// means exactly that a is b or one of b's Ancestors. It also checks that an
// accepted base domain is a valid host name, not an IP literal, whose
// top-level label nobody can own, and that a reserved name refuses exactly
// the names it overlaps.
func FuzzRules(f *testing.F) {
	for _, p := range [][2]string{
		{"example.com", "example.com"}, {"example.com", "a.example.com"}, {"example.com", "badexample.com"},
		{"example.com", "example.com.evil.net"}, {"a.example.com", "b.example.com"}, {"github.io", "alice.github.io"},
		{"co.uk", "example.co.uk"}, {"", "example.com"}, {".com", "a..com"}, {"com", "com."},
		{"herokuapp.com", "x.herokuapp.com"}, {"www.ck", "a.www.ck"}, {"1.2.3.4", "10.0.0.1"},
	} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !Covers(a, a) {
			t.Fatalf("Covers(%q, %q) = false", a, a)
		}
		if Overlaps(a, b) != Overlaps(b, a) {
			t.Fatalf("Overlaps(%q, %q) is not symmetric", a, b)
		}
		if Covers(a, b) && Covers(b, a) && a != b {
			t.Fatalf("%q and %q cover each other", a, b)
		}
		if proto.ValidateHostname(a) == nil && proto.ValidateHostname(b) == nil {
			anc := Ancestors(b)
			if got, want := Covers(a, b), a == b || slices.Contains(anc, a); got != want {
				t.Fatalf("Covers(%q, %q) = %v but Ancestors(%q) = %q", a, b, got, b, anc)
			}
			if len(anc) != strings.Count(b, ".") {
				t.Fatalf("Ancestors(%q) = %q: want one per dot", b, anc)
			}
			for _, p := range anc {
				if !Covers(p, b) || p == b {
					t.Fatalf("Ancestors(%q) has %q, which does not cover it", b, p)
				}
			}
		}
		if proto.ValidateHostname(a) == nil && proto.ValidateHostname(b) == nil {
			// A reserved name keeps tenants off itself, every name under it
			// and every name above it: exactly the names it overlaps, and
			// IP literals, which nobody may own.
			refused := NewReserved(a, "", "", nil).Ownable(b) != nil
			if want := Overlaps(a, b) || IPLiteral(b) != nil; refused != want {
				t.Fatalf("with %q reserved, %q refused=%v, want %v", a, b, refused, want)
			}
		}
		if ValidateBase(a) == nil {
			if err := proto.ValidateHostname(a); err != nil {
				t.Fatalf("ValidateBase accepted %q, not a host name: %v", a, err)
			}
			if last := a[strings.LastIndexByte(a, '.')+1:]; strings.Trim(last, "0123456789") == "" || net.ParseIP(a) != nil {
				t.Fatalf("ValidateBase accepted %q, an IP literal or a numeric top-level label", a)
			}
			anc := Ancestors(a)
			if tld := anc[len(anc)-1]; ValidateBase(tld) == nil {
				t.Fatalf("ValidateBase accepts both %q and its top-level label %q", a, tld)
			}
		}
	})
}
