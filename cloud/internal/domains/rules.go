// Package domains owns base domains: which names a home may claim (Public
// Suffix List, ICANN and private sections), the rule that no two homes own
// overlapping names, and which hosts a home's base domains cover.
package domains

import (
	"fmt"
	"strings"

	"github.com/weppos/publicsuffix-go/publicsuffix"

	"homeport.dev/proto"
)

// pslOptions includes the PSL's private section, so github.io or
// herokuapp.com count as public suffixes: nobody may claim all of them.
var pslOptions = &publicsuffix.FindOptions{IgnorePrivate: false, DefaultRule: publicsuffix.DefaultRule}

// ValidateBase checks that d (already normalised) is a strict host name that
// is a registrable domain or a name under one, never a public suffix itself.
// A name under a registrable domain is accepted so that an organisation can
// give each home its own delegated subdomain (home1.example.com).
func ValidateBase(d string) error {
	if err := proto.ValidateHostname(d); err != nil {
		return err
	}
	rule := publicsuffix.DefaultList.Find(d, pslOptions)
	suffix := d
	if rule != nil {
		suffix = rule.Decompose(d)[1]
	}
	if suffix == "" || suffix == d {
		return fmt.Errorf("%s is a public suffix (like com, co.uk or github.io) that nobody can own; register your own domain under it, like example.%s", d, d)
	}
	return nil
}

// Covers reports whether host is base or a name under it.
func Covers(base, host string) bool {
	return host == base || strings.HasSuffix(host, "."+base)
}

// Overlaps reports whether a and b are equal or one is under the other.
func Overlaps(a, b string) bool { return Covers(a, b) || Covers(b, a) }

// Ancestors returns the proper parents of d, nearest first:
// a.b.example.com -> b.example.com, example.com, com.
func Ancestors(d string) []string {
	var out []string
	for i := strings.IndexByte(d, '.'); i >= 0; i = strings.IndexByte(d, '.') {
		d = d[i+1:]
		out = append(out, d)
	}
	return out
}
