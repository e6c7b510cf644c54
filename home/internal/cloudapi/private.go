package cloudapi

import (
	"fmt"
	"strconv"
	"strings"

	"homeport.dev/proto"
)

// FindPrivateMapping picks, among the account's private mappings ms, the one
// `home connect REF` means, self being the slug of the home that asks:
// NAME is self's mapping of that name, SLUG/NAME another home's. A REF of
// digits that names no mapping of self is read as a mapping ID, the way
// connect took them before mappings had names; byID says so, for the
// caller to warn that IDs change when a forward is closed and opened. When
// nothing matches, the error lists what REF could have been.
func FindPrivateMapping(ms []proto.PrivateMapping, self, ref string) (m proto.PrivateMapping, byID bool, err error) {
	home, name, other := strings.Cut(ref, "/")
	if !other {
		home, name = self, ref
	}
	if err := proto.ValidateMappingName(name); err != nil {
		return m, false, fmt.Errorf("%s is not NAME or HOME/NAME: %w", proto.Printable(ref), err)
	}
	for _, m := range ms {
		if m.Home == home && m.Name == name {
			return m, false, nil
		}
	}
	if id, err := strconv.ParseUint(ref, 10, 64); err == nil {
		for _, m := range ms {
			if m.ID == id {
				return m, true, nil
			}
		}
	}
	where := "this home (" + self + ")"
	if home != self {
		where = "home " + proto.Printable(home)
	}
	return m, false, fmt.Errorf("%s has no private mapping named %s; %s", where, name, available(ms, self))
}

// available lists the private mappings as connect takes them: this home's
// by NAME, the others' by SLUG/NAME.
func available(ms []proto.PrivateMapping, self string) string {
	if len(ms) == 0 {
		return "your account has none (on the home that runs the service: home expose tcp --private --name NAME --to PORT)"
	}
	refs := make([]string, 0, len(ms))
	for _, m := range ms {
		if m.Home == self {
			refs = append(refs, m.Name)
		} else {
			refs = append(refs, m.Home+"/"+m.Name)
		}
	}
	return "your account has: " + strings.Join(refs, ", ")
}
