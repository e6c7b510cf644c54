package proto

import "time"

// Schemes a mapping can use.
const (
	SchemeHTTP  = "http"
	SchemeHTTPS = "https"
	SchemeTCP   = "tcp"
)

// Roles a user can have; what each may do is the cloud's capability table
// (cloud/internal/account/roles.go).
const (
	RoleAdmin    = "admin"
	RoleOperator = "operator"
	RoleUser     = "user"
	RoleViewer   = "viewer"
)

// Roles lists every role, most powerful first.
var Roles = []string{RoleAdmin, RoleOperator, RoleUser, RoleViewer}

// Signup modes of a cloud (--signup).
const (
	SignupOpen     = "open"     // accounts are active at once
	SignupApproval = "approval" // accounts wait for an admin's approval
	SignupInvite   = "invite"   // only with an invitation link
	SignupClosed   = "closed"   // no new accounts but the CLI's
)

// InvitationRequest creates an invitation: the role the invitee gets and
// how long the link stays valid (hours; 0 means 72).
type InvitationRequest struct {
	Role       string `json:"role"`
	ValidHours int    `json:"valid_hours,omitempty"`
}

// Invitation is a single-use link to create an account with a role. Token
// (and URL) are only in the answer that creates it; the cloud keeps a hash.
type Invitation struct {
	ID        uint64     `json:"id"`
	Role      string     `json:"role"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedBy    string     `json:"used_by,omitempty"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	Token     string     `json:"token,omitempty"`
	URL       string     `json:"url,omitempty"`
}

// AcceptInvitationRequest creates the invitee's account, active at once.
type AcceptInvitationRequest struct {
	Token    string `json:"token"`
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

// RoleRequest changes a user's role.
type RoleRequest struct {
	Role string `json:"role"`
}

// PasswordReset is a one-time link that sets a user's password; Token
// (and URL) are shown once.
type PasswordReset struct {
	Username  string    `json:"username"`
	ExpiresAt time.Time `json:"expires_at"`
	Token     string    `json:"token"`
	URL       string    `json:"url,omitempty"`
}

// ResetPasswordRequest uses a password-reset link.
type ResetPasswordRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// SignupRequest creates an inactive account that an admin must approve.
type SignupRequest struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

// TokenRequest trades a username and password for a new API token.
type TokenRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Name labels the token in listings (for example the machine it is for).
	Name string `json:"name,omitempty"`
}

// Token is a newly created API token. The secret is shown only once.
type Token struct {
	ID        uint64     `json:"id"`
	Name      string     `json:"name"`
	Token     string     `json:"token,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	LastUsed  *time.Time `json:"last_used_at,omitempty"`
}

// User is an account as the API shows it.
type User struct {
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	First int `json:"first"`
	Last  int `json:"last"`
}

// SSHEndpoint tells a home where and as whom to open its tunnel connection,
// and which host key to expect (pinned at registration, no trust on first use).
type SSHEndpoint struct {
	Host    string `json:"host"`
	Port    int    `json:"port"`
	User    string `json:"user"`
	HostKey string `json:"host_key"`
}

// Home is a claimed home slot.
type Home struct {
	Slug               string      `json:"slug"`
	Owner              string      `json:"owner,omitempty"`
	PublicKey          string      `json:"public_key"`
	BandwidthLimitKbps *int64      `json:"bandwidth_limit_kbps"`
	BaseDomains        []string    `json:"base_domains"`
	SSH                SSHEndpoint `json:"ssh"`
	TunnelPorts        PortRange   `json:"tunnel_ports"`
	TCPPorts           PortRange   `json:"tcp_ports"`
	// SharedDomain is the cloud's --shared-domain, empty when it has none.
	// The home may publish <slug>.SHARED and <label>-<slug>.SHARED without
	// owning a domain.
	SharedDomain string `json:"shared_domain,omitempty"`
	// PublicHTTPPort and PublicHTTPSPort are the ports visitors use, so a
	// home can print a URL that works (:8080 with cloud serve --dev).
	PublicHTTPPort  int       `json:"public_http_port,omitempty"`
	PublicHTTPSPort int       `json:"public_https_port,omitempty"`
	CreatedAt       time.Time `json:"created_at"`

	// Edge names the cloud node that serves the home (SSH is that edge's
	// endpoint) when several share one database; empty on a single cloud.
	Edge string `json:"edge,omitempty"`
}

// ClaimHomeRequest claims a free home slot for the caller.
type ClaimHomeRequest struct {
	PublicKey string `json:"public_key"`
}

// PatchHomeRequest changes a home. Absent fields stay as they are; for the
// bandwidth limit, an explicit null removes the limit.
type PatchHomeRequest struct {
	PublicKey          *string         `json:"public_key,omitempty"`
	BandwidthLimitKbps Optional[int64] `json:"bandwidth_limit_kbps,omitzero"`
}

// BaseDomain is a registrable domain owned by one home.
type BaseDomain struct {
	Domain    string    `json:"domain"`
	CreatedAt time.Time `json:"created_at"`
}

// BaseDomainRequest registers a base domain.
type BaseDomainRequest struct {
	Domain string `json:"domain"`
}

// Mapping routes public traffic (or, when private, only the owner's own
// `home connect`) to one tunnel port of a home.
type Mapping struct {
	ID uint64 `json:"id"`
	// Name is the mapping's stable key within its home (ValidateMappingName):
	// always set on private mappings (`home connect NAME`), optional on
	// public ones. The ID may change when a home closes and reopens a
	// forward; the name does not.
	Name       string `json:"name,omitempty"`
	Scheme     string `json:"scheme"`
	Host       string `json:"host,omitempty"`
	PublicPort int    `json:"public_port,omitempty"`
	TunnelPort int    `json:"tunnel_port"`
	Private    bool   `json:"private"`
	// ProxyProtocol: the tunnel receives a PROXY v2 header with the
	// visitor's address first (the home agent's gateway reads it). Off for
	// plain `ssh -R` targets, which get the visitor's bytes untouched.
	ProxyProtocol bool      `json:"proxy_protocol"`
	State         string    `json:"state"`
	CreatedAt     time.Time `json:"created_at"`
}

// PrivateMapping is one private mapping of the caller's account (GET
// /api/v1/private-mappings), for `home connect`: the SSH endpoint opens
// TunnelPort only to homes of the same account.
type PrivateMapping struct {
	Home          string `json:"home"` // the slug of the home that serves it
	Name          string `json:"name"` // unique in the home: `home connect [HOME/]NAME`
	ID            uint64 `json:"id"`
	Scheme        string `json:"scheme"`
	Host          string `json:"host,omitempty"`
	PublicPort    int    `json:"public_port,omitempty"`
	TunnelPort    int    `json:"tunnel_port"`
	ProxyProtocol bool   `json:"proxy_protocol"`
	State         string `json:"state"`
}

// MappingRequest creates a mapping.
type MappingRequest struct {
	// Name is required for a private mapping and optional for a public
	// one; unique within the home (ValidateMappingName).
	Name       string `json:"name,omitempty"`
	Scheme     string `json:"scheme"`
	Host       string `json:"host,omitempty"`
	PublicPort int    `json:"public_port,omitempty"`
	Private    bool   `json:"private,omitempty"`
	// ProxyProtocol defaults to true (the home agent). Send false for a
	// target reached with plain `ssh -R`, which must get raw bytes.
	ProxyProtocol *bool `json:"proxy_protocol,omitempty"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

// Route is one key of one HAProxy map: what the database wants next to what
// HAProxy has. Drift is "" when both agree, else "missing" (HAProxy lacks
// it), "unexpected" (HAProxy has it, the database does not) or "wrong_port".
type Route struct {
	Map     string `json:"map"`
	Key     string `json:"key"`
	Desired string `json:"desired,omitempty"`
	Live    string `json:"live,omitempty"`
	Drift   string `json:"drift,omitempty"`
}

// RoutesReport is the admin view of the data plane.
type RoutesReport struct {
	HAProxy string  `json:"haproxy"` // managed, external or off
	InSync  bool    `json:"in_sync"`
	Error   string  `json:"error,omitempty"`
	Routes  []Route `json:"routes"`
}

// ReconcileResult says what a reconcile repaired.
type ReconcileResult struct {
	Repaired int `json:"repaired"`
}
