package account

import (
	"fmt"
	"slices"
	"strings"

	"homeport.dev/cloud/internal/problem"
	"homeport.dev/proto"
)

// Capability is one thing a role may do. The API's middleware, the web UI's
// handlers and its templates all ask Can; nothing else looks at a role.
type Capability string

// Capabilities. The names are what templates pass to Can.
const (
	// ReadOwn: log in, read one's own account, homes, domains, mappings and
	// tokens. Every role.
	ReadOwn Capability = "read-own"
	// OwnTokens: create, rotate and revoke one's own API tokens (a viewer
	// needs one to read through the API). Every role.
	OwnTokens Capability = "own-tokens"
	// ManageOwn: claim, change and release one's own homes, their base
	// domains and mappings.
	ManageOwn Capability = "manage-own"
	// ReadAdmin: the admin views (users, homes, mappings, live routes,
	// invitations without their links, metrics, the live dashboard). They
	// hold no secret: tokens, links and password hashes are never shown.
	ReadAdmin Capability = "read-admin"
	// ApproveUsers: approve and deactivate accounts (not admins: that
	// needs ManageRoles).
	ApproveUsers Capability = "approve-users"
	// ReleaseAny: release any home, reconcile HAProxy with the database.
	ReleaseAny Capability = "release-any"
	// ManageRoles: change roles, deactivate an admin.
	ManageRoles Capability = "manage-roles"
	// ManageUsers: invite, reset passwords, delete accounts.
	ManageUsers Capability = "manage-users"
)

// capabilities is the one table of who may do what.
var capabilities = map[string][]Capability{
	proto.RoleAdmin:    {ReadOwn, OwnTokens, ManageOwn, ReadAdmin, ApproveUsers, ReleaseAny, ManageRoles, ManageUsers},
	proto.RoleOperator: {ReadOwn, OwnTokens, ManageOwn, ReadAdmin, ApproveUsers, ReleaseAny},
	proto.RoleUser:     {ReadOwn, OwnTokens, ManageOwn},
	proto.RoleViewer:   {ReadOwn, OwnTokens, ReadAdmin},
}

// Can reports whether role has capability c. Unknown roles can do nothing.
func Can(role string, c Capability) bool {
	return slices.Contains(capabilities[role], c)
}

// Need returns a Forbidden problem unless role has capability c.
func Need(role string, c Capability) error {
	if Can(role, c) {
		return nil
	}
	return problem.New(problem.Forbidden, "your role (%s) may not do this: it needs %s, which %s have", role, c, holders(c))
}

func holders(c Capability) string {
	var out []string
	for _, r := range proto.Roles {
		if Can(r, c) {
			out = append(out, r+"s")
		}
	}
	switch len(out) {
	case 0:
		return "no role"
	case 1:
		return "only " + out[0]
	}
	return strings.Join(out[:len(out)-1], ", ") + " and " + out[len(out)-1]
}

// ValidateRole checks a role name.
func ValidateRole(role string) error {
	if !slices.Contains(proto.Roles, role) {
		return problem.InvalidField("role", fmt.Errorf("unknown role %s; choose one of %v", proto.Printable(role), proto.Roles))
	}
	return nil
}
