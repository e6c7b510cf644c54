package haproxy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid reports input rejected before anything was sent to HAProxy.
var ErrInvalid = errors.New("haproxy: invalid input")

// Entry is one map line: a lookup key and the tunnel port it routes to.
type Entry struct {
	Key, Value string
}

// Validate accepts a key that is a lowercase LDH hostname or a decimal port
// and a value that is a decimal port. This is the only gate between callers
// and the runtime socket, so it admits no spaces, newlines, ';', '#', '\' or
// upper case: nothing that HAProxy's command parser could interpret.
func (e Entry) Validate() error {
	if err := validateKey(e.Key); err != nil {
		return err
	}
	if !validPort(e.Value) {
		return fmt.Errorf("%w: value %q is not a port", ErrInvalid, e.Value)
	}
	return nil
}

// validateKey accepts a port (a key of digits only: "080" or "0" is neither a
// port nor, usefully, a hostname) or a lowercase LDH hostname.
func validateKey(key string) error {
	if allDigits(key) {
		if !validPort(key) {
			return fmt.Errorf("%w: key %q is not a port", ErrInvalid, key)
		}
		return nil
	}
	if !validHostname(key) {
		return fmt.Errorf("%w: key %q is neither a lowercase hostname nor a port", ErrInvalid, key)
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// validHostname reports whether s is a lowercase LDH hostname of at most 253
// characters: dot-separated labels of 1..63 [a-z0-9-] not starting or ending
// with '-'.
func validHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validPort reports whether s is a canonical decimal port 1..65535 (no sign,
// no leading zero), so that it matches HAProxy's string form of dst_port.
func validPort(s string) bool {
	if len(s) == 0 || len(s) > 5 || s[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n <= 65535
}

// validPath reports whether p is an absolute path made only of characters
// that need no quoting in haproxy.cfg or on the runtime socket.
func validPath(p string) bool {
	if len(p) < 2 || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '/' || c == '+' || c == '-') {
			return false
		}
	}
	return true
}

// validateMapName accepts a map as HAProxy names it: its file path or "#<id>".
func validateMapName(name string) error {
	if len(name) > 1 && name[0] == '#' {
		for i := 1; i < len(name); i++ {
			if name[i] < '0' || name[i] > '9' {
				return fmt.Errorf("%w: map name %q", ErrInvalid, name)
			}
		}
		return nil
	}
	if !validPath(name) {
		return fmt.Errorf("%w: map name %q is neither #<id> nor an absolute path", ErrInvalid, name)
	}
	return nil
}
