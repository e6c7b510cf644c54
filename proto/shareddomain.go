package proto

import (
	"fmt"
	"strings"
)

// SharedName is the name a home publishes under the cloud's shared domain:
// SLUG.SHARED for an empty label, else LABEL-SLUG.SHARED. One label deep,
// so a single wildcard DNS record (*.SHARED) covers every home, and the
// slug (which has no dash) is always the part after the last dash.
func SharedName(label, slug, shared string) string {
	if label == "" {
		return slug + "." + shared
	}
	return label + "-" + slug + "." + shared
}

// SharedOwner returns the slug of the home that may publish host under the
// shared domain, and false when host is not a name of the shared domain's
// form (exactly one label below it).
func SharedOwner(host, shared string) (string, bool) {
	if shared == "" {
		return "", false
	}
	first, ok := strings.CutSuffix(host, "."+shared)
	if !ok || first == "" || strings.Contains(first, ".") {
		return "", false
	}
	if i := strings.LastIndexByte(first, '-'); i >= 0 {
		return first[i+1:], true
	}
	return first, true
}

// ValidateSharedLabel checks a label chosen for a shared-domain name: lower
// case letters, digits and inner dashes, short enough that LABEL-SLUG stays
// one DNS label.
func ValidateSharedLabel(label, slug string) error {
	if label == "" {
		return nil
	}
	if len(label)+1+len(slug) > 63 {
		return fmt.Errorf("label %s is too long: %s-%s must fit in 63 characters", Printable(label), Printable(label), slug)
	}
	for i, c := range label {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(label)-1) {
			return fmt.Errorf("label %s must be lower-case letters, digits and inner dashes", Printable(label))
		}
	}
	return nil
}
