package proto

import (
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
)

// MaxHostnameLen is the longest DNS name in presentation form (no trailing dot).
const MaxHostnameLen = 253

var (
	labelRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	usernameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	// mappingNameRE is one DNS label of at most 32 characters: safe in a
	// URL, a shell argument, SQL and a log line as it is.
	mappingNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
)

// ValidateHostname accepts only lowercase LDH names: labels of 1..63 letters,
// digits and inner hyphens, at least two labels, 253 characters at most, no
// trailing dot. It is deliberately strict: whatever passes it is safe to put on
// the HAProxy runtime socket, in a map file, in a path or in SQL.
func ValidateHostname(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("host name is empty")
	case len(name) > MaxHostnameLen:
		return fmt.Errorf("host name is %d characters long; the maximum is %d", len(name), MaxHostnameLen)
	case strings.HasSuffix(name, "."):
		return fmt.Errorf("host name %s ends with a dot; write it without the trailing dot", Printable(name))
	case name != strings.ToLower(name):
		return fmt.Errorf("host name %s has upper-case letters; use lower case", Printable(name))
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return fmt.Errorf("host name %s needs at least two labels, like example.com", Printable(name))
	}
	for _, l := range labels {
		if !labelRE.MatchString(l) {
			return fmt.Errorf("host name %s has an invalid label %s: use letters a-z, digits and inner hyphens, 1 to 63 characters (internationalised names in punycode, xn--...)", Printable(name), Printable(l))
		}
	}
	return nil
}

// NormalizeHostname trims surrounding spaces and lowercases; it does not
// remove inner junk, so ValidateHostname still rejects it afterwards.
func NormalizeHostname(name string) string {
	return strings.ToLower(strings.TrimSpace(name))
}

// ValidateUsername accepts [a-z0-9_-]{1,32}.
func ValidateUsername(name string) error {
	if !usernameRE.MatchString(name) {
		return fmt.Errorf("username %s is invalid: use 1 to 32 characters from a-z, 0-9, _ and -", Printable(name))
	}
	return nil
}

// ValidateMappingName accepts a mapping's name: 1 to 32 characters a-z,
// 0-9 and inner hyphens, like gpu-ui.
func ValidateMappingName(name string) error {
	if !mappingNameRE.MatchString(name) {
		return fmt.Errorf("name %s is invalid: use 1 to 32 characters a-z, 0-9 and inner hyphens, like gpu-ui", Printable(name))
	}
	return nil
}

// ValidateEmail accepts a single bare address (no display name).
func ValidateEmail(addr string) error {
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || len(addr) > 254 {
		return fmt.Errorf("email %s is not a valid address like name@example.com", Printable(addr))
	}
	return nil
}

// ValidatePort accepts 1..65535.
func ValidatePort(p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("port %d is out of range 1-65535", p)
	}
	return nil
}

// ParsePortRange parses "LO-HI" (inclusive, LO <= HI, both valid ports).
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return PortRange{}, fmt.Errorf("port range %s must look like LO-HI, e.g. 10000-10099", Printable(s))
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil {
		return PortRange{}, fmt.Errorf("port range %s must be two numbers, LO-HI", Printable(s))
	}
	r := PortRange{First: a, Last: b}
	return r, r.Validate()
}

// Validate checks both ends and their order.
func (r PortRange) Validate() error {
	if err := ValidatePort(r.First); err != nil {
		return err
	}
	if err := ValidatePort(r.Last); err != nil {
		return err
	}
	if r.First > r.Last {
		return fmt.Errorf("port range %d-%d is reversed", r.First, r.Last)
	}
	return nil
}

// Contains reports whether p is inside the range.
func (r PortRange) Contains(p int) bool { return p >= r.First && p <= r.Last }

// Size is the number of ports in the range.
func (r PortRange) Size() int { return r.Last - r.First + 1 }

// String formats as LO-HI.
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// ValidateScheme accepts http, https and tcp.
func ValidateScheme(s string) error {
	switch s {
	case SchemeHTTP, SchemeHTTPS, SchemeTCP:
		return nil
	}
	return fmt.Errorf("scheme %s is not one of http, https, tcp", Printable(s))
}

// Printable quotes (with ASCII escapes) and truncates, so user input can be
// echoed in an error message without breaking a terminal or a log line.
func Printable(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.QuoteToASCII(s)
}
