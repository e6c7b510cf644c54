// Package domains owns base domains: which names a home may claim (Public
// Suffix List, ICANN and private sections), the rule that no two homes own
// overlapping names, and which hosts a home's base domains cover.
package domains

import (
	"fmt"
	"net"
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
	if err := IPLiteral(d); err != nil {
		return err
	}
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

// Registered returns the registered domain of host (its public suffix plus
// one label, PSL private section included), the unit an ACME CA such as
// Let's Encrypt counts certificate orders by: app.example.co.uk ->
// example.co.uk, a.b.github.io -> b.github.io.
func Registered(host string) (string, error) {
	d, err := publicsuffix.DomainFromListWithOptions(publicsuffix.DefaultList, host, pslOptions)
	if err != nil {
		return "", fmt.Errorf("%s has no registered domain: %w", proto.Printable(host), err)
	}
	return d, nil
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

// IPLiteral refuses IP addresses as names: IPv4 (127.0.0.1), IPv6 (::1,
// [::1]) and any name whose last label is all digits (1.2.3.4, 10.1), which
// the PSL would otherwise take as an unknown TLD. Whoever owned such a name
// would receive every request sent to that address, the cloud's included.
func IPLiteral(name string) error {
	n := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]"), ".")
	if i := strings.IndexByte(n, '%'); i >= 0 {
		n = n[:i] // an IPv6 zone: fe80::1%eth0
	}
	last := n[strings.LastIndexByte(n, '.')+1:]
	if net.ParseIP(n) == nil && (last == "" || strings.Trim(last, "0123456789") != "") {
		return nil
	}
	shown := name
	if net.ParseIP(n) == nil && proto.ValidateHostname(name) != nil {
		shown = proto.Printable(name)
	}
	return fmt.Errorf("%s is an IP address (or ends in a numeric label, like one): only a domain name can be owned", shown)
}

// ReservedName is a name no tenant may own, nor any name above or under it.
type ReservedName struct {
	Name string
	Why  string // what it is, e.g. "this cloud's public host"
}

// Reserved is the set of names kept from tenants: the cloud's own names and
// the operator's list.
type Reserved struct {
	names  []ReservedName
	shared string // the shared domain, also one of names; "" when none
}

// NewReserved reserves the cloud's public host, its API host, the shared
// domain (if any) and the operator's names. IP addresses are skipped: no
// tenant can own one anyway (IPLiteral). Names under the shared domain are
// reserved too: a home gets one from the cloud's shared-domain allocation,
// never by registering or mapping it as its own.
func NewReserved(publicHost, apiHost, sharedDomain string, operator []string) Reserved {
	var r Reserved
	add := func(name, why string) {
		name = proto.NormalizeHostname(name)
		if name == "" || IPLiteral(name) != nil {
			return
		}
		for _, n := range r.names {
			if n.Name == name {
				return
			}
		}
		r.names = append(r.names, ReservedName{Name: name, Why: why})
	}
	add(publicHost, "this cloud's public host")
	add(apiHost, "this cloud's web and API host")
	add(sharedDomain, "this cloud's shared domain")
	if sharedDomain = proto.NormalizeHostname(sharedDomain); sharedDomain != "" && IPLiteral(sharedDomain) == nil {
		r.shared = sharedDomain
	}
	for _, n := range operator {
		add(n, "reserved by this cloud's operator")
	}
	return r
}

// Names returns the reserved names in the order they were given.
func (r Reserved) Names() []ReservedName { return r.names }

// Shared returns the shared domain, "" when the cloud has none.
func (r Reserved) Shared() string { return r.shared }

// SharedHost applies the shared domain's rules to host for the home slug.
// under reports whether host is a name under the shared domain (then these
// rules replace the base-domain ones); err says why slug may not publish it:
// the name is not one label below the shared domain, belongs to another
// home, has a bad label, or is reserved by another rule. The shared domain
// itself is not under it (no home may publish it: Ownable refuses it).
func (r Reserved) SharedHost(host, slug string) (under bool, err error) {
	if r.shared == "" || !strings.HasSuffix(host, "."+r.shared) {
		return false, nil
	}
	yours := fmt.Sprintf("this home may publish %s and %s", proto.SharedName("", slug, r.shared), proto.SharedName("LABEL", slug, r.shared))
	owner, ok := proto.SharedOwner(host, r.shared)
	if !ok {
		return true, fmt.Errorf("%s is more than one label below the shared domain %s; %s", host, r.shared, yours)
	}
	if owner != slug {
		return true, fmt.Errorf("%s is a name of home %s under the shared domain %s; %s", host, owner, r.shared, yours)
	}
	if first := strings.TrimSuffix(host, "."+r.shared); first != slug {
		label := strings.TrimSuffix(first, "-"+slug)
		if label == "" {
			return true, fmt.Errorf("%s has an empty label; %s", proto.Printable(host), yours)
		}
		if err := proto.ValidateSharedLabel(label, slug); err != nil {
			return true, err
		}
	}
	for _, n := range r.names {
		// A name above the shared domain (the cloud's own, under which the
		// operator put it) keeps tenants from registering, not from this.
		if !Covers(n.Name, r.shared) {
			if err := n.check(host); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

// Check refuses name when it equals a reserved name, sits under one, or is
// above one (owning provider.net would let a tenant answer the ACME
// challenges of cloud.provider.net). The message names the rule.
func (r Reserved) Check(name string) error {
	for _, n := range r.names {
		if err := n.check(name); err != nil {
			return err
		}
	}
	return nil
}

// check refuses name when it is n, under n or above n.
func (n ReservedName) check(name string) error {
	switch {
	case name == n.Name:
		return fmt.Errorf("%s is reserved: it is %s", name, n.Why)
	case Covers(n.Name, name):
		return fmt.Errorf("%s is reserved: it is under %s, %s", name, n.Name, n.Why)
	case Covers(name, n.Name):
		return fmt.Errorf("%s is reserved: %s, %s, is under it", name, n.Name, n.Why)
	}
	return nil
}

// Ownable applies every rule about who may own a name that does not depend
// on the database: no IP literal, nothing reserved.
func (r Reserved) Ownable(name string) error {
	if err := IPLiteral(name); err != nil {
		return err
	}
	return r.Check(name)
}
