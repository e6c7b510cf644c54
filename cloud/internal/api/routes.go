package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"homeport.dev/proto"
)

// route is one API operation: the router and the OpenAPI document are both
// built from this table, so the description cannot drift from the server.
type route struct {
	method, path string
	summary      string
	auth         authLevel
	body         any // request body type for the docs, nil when none
	resp         any // success body type for the docs, nil when none
	status       int // success status
	handler      echo.HandlerFunc
}

func (s *Server) table() []route {
	v := proto.APIPrefix
	return []route{
		{http.MethodPost, v + "/auth/signup", "Create an account (per --signup: active at once, inactive until an admin approves it, or refused)", authNone, proto.SignupRequest{}, proto.User{}, 201, s.signup},
		{http.MethodPost, v + "/auth/token", "Trade username and password for a new API token (rate-limited)", authNone, proto.TokenRequest{}, proto.Token{}, 201, s.createTokenWithPassword},
		{http.MethodPost, v + "/auth/invitations/accept", "Accept an invitation: create the account it offers, active at once with its role (the link is single-use)", authNone, proto.AcceptInvitationRequest{}, proto.User{}, 201, s.acceptInvitation},
		{http.MethodPost, v + "/auth/password-reset", "Use a password-reset link: set a new password; the link is used up and the account's web sessions end", authNone, proto.ResetPasswordRequest{}, proto.User{}, 200, s.resetPassword},
		{http.MethodGet, v + "/me", "The caller's account", authUser, nil, proto.User{}, 200, s.me},
		{http.MethodGet, v + "/tokens", "The caller's API tokens (without secrets)", authUser, nil, []proto.Token{}, 200, s.listTokens},
		{http.MethodPost, v + "/tokens", "Create another API token; the secret is shown once", authUser, tokenNameRequest{}, proto.Token{}, 201, s.createToken},
		{http.MethodPost, v + "/tokens/:id/rotate", "Replace a token's secret; the old one stops working", authUser, nil, proto.Token{}, 200, s.rotateToken},
		{http.MethodDelete, v + "/tokens/:id", "Revoke a token", authUser, nil, nil, 204, s.deleteToken},
		{http.MethodGet, v + "/audit", "The audit log of the caller's account and homes, newest first (filters: actor, home, kind, since, until; cursor, limit)", authUser, nil, proto.AuditPage{}, 200, s.ownAudit},

		{http.MethodGet, v + "/homes", "The caller's homes", authHome, nil, []proto.Home{}, 200, s.listHomes},
		{http.MethodPost, v + "/homes", "Claim a home slot with an SSH public key", authUser, proto.ClaimHomeRequest{}, proto.Home{}, 201, s.claimHome},
		{http.MethodGet, v + "/homes/:slug", "A home's details: ports, SSH endpoint and host key, limit, domains", authHome, nil, proto.Home{}, 200, s.getHome},
		{http.MethodPatch, v + "/homes/:slug", "Change a home's SSH key or bandwidth limit (null removes the limit)", authHome, proto.PatchHomeRequest{}, proto.Home{}, 200, s.patchHome},
		{http.MethodDelete, v + "/homes/:slug", "Release a home and everything it owns", authHome, nil, nil, 204, s.releaseHome},
		{http.MethodGet, v + "/homes/:slug/base-domains", "A home's base domains", authHome, nil, []proto.BaseDomain{}, 200, s.listDomains},
		{http.MethodPost, v + "/homes/:slug/base-domains", "Register a base domain for a home", authHome, proto.BaseDomainRequest{}, proto.BaseDomain{}, 201, s.registerDomain},
		{http.MethodDelete, v + "/homes/:slug/base-domains/:domain", "Remove a base domain (409 while mappings use it)", authHome, nil, nil, 204, s.removeDomain},
		{http.MethodGet, v + "/homes/:slug/mappings", "A home's mappings with live state", authHome, nil, []proto.Mapping{}, 200, s.listMappings},
		{http.MethodPost, v + "/homes/:slug/mappings", "Create a mapping", authHome, proto.MappingRequest{}, proto.Mapping{}, 201, s.createMapping},
		{http.MethodDelete, v + "/homes/:slug/mappings/:id", "Delete a mapping", authHome, nil, nil, 204, s.deleteMapping},
		{http.MethodPost, v + "/homes/:slug/certificates", "Report a certificate the home obtained for one of its hosts (counted per registered domain for a week; 429 beyond the home's weekly budget)", authHome, proto.CertificateOrderRequest{}, proto.CertificateOrder{}, 201, s.reportCertificate},
		{http.MethodGet, v + "/private-mappings", "The private mappings of all the account's homes (home connect)", authHome, nil, []proto.PrivateMapping{}, 200, s.listPrivateMappings},

		{http.MethodGet, v + "/admin/users", "All users", authAdmin, nil, []proto.User{}, 200, s.adminListUsers},
		{http.MethodPost, v + "/admin/users/:username/approve", "Activate a user", authAdmin, nil, proto.User{}, 200, s.adminApprove},
		{http.MethodPost, v + "/admin/users/:username/deactivate", "Deactivate a user; their tokens stop working", authAdmin, nil, proto.User{}, 200, s.adminDeactivate},
		{http.MethodPost, v + "/admin/users/:username/role", "Change a user's role (never the last active admin's)", authAdmin, proto.RoleRequest{}, proto.User{}, 200, s.adminSetRole},
		{http.MethodPost, v + "/admin/users/:username/password-reset", "Make a one-time password-reset link for a user (shown once; an earlier link stops working)", authAdmin, nil, proto.PasswordReset{}, 201, s.adminPasswordReset},
		{http.MethodDelete, v + "/admin/users/:username", "Delete a user: their homes are released, their tokens and sessions end (never the last active admin)", authAdmin, nil, nil, 204, s.adminDeleteUser},
		{http.MethodGet, v + "/admin/invitations", "Invitations, without their links", authAdmin, nil, []proto.Invitation{}, 200, s.adminListInvitations},
		{http.MethodPost, v + "/admin/invitations", "Invite someone: a single-use link to an account with a role (shown once)", authAdmin, proto.InvitationRequest{}, proto.Invitation{}, 201, s.adminCreateInvitation},
		{http.MethodDelete, v + "/admin/invitations/:id", "Revoke an invitation", authAdmin, nil, nil, 204, s.adminRevokeInvitation},
		{http.MethodGet, v + "/admin/homes", "All homes", authAdmin, nil, []proto.Home{}, 200, s.adminListHomes},
		{http.MethodDelete, v + "/admin/homes/:slug", "Release any home", authAdmin, nil, nil, 204, s.adminReleaseHome},
		{http.MethodGet, v + "/admin/mappings", "All mappings", authAdmin, nil, []adminMapping{}, 200, s.adminListMappings},
		{http.MethodGet, v + "/admin/routes", "Live HAProxy maps next to the database's desired routes, drift marked", authAdmin, nil, proto.RoutesReport{}, 200, s.adminRoutes},
		{http.MethodGet, v + "/admin/audit", "The audit log: who changed what, when, from where; newest first (filters: actor, home, kind, since, until; cursor, limit)", authAdmin, nil, proto.AuditPage{}, 200, s.adminAudit},
		{http.MethodGet, v + "/admin/edges", "The cloud's edges (nodes sharing the database): SSH endpoint, load, homes, up or down (no heartbeat for 10 s)", authAdmin, nil, []proto.Edge{}, 200, s.adminListEdges},
		{http.MethodPost, v + "/admin/homes/:slug/edge", "Move a home to another edge: the old edge drops its connection and routes, the home's agent reconnects to the new one", authAdmin, proto.MoveHomeRequest{}, proto.Home{}, 200, s.adminMoveHome},
		{http.MethodPost, v + "/admin/reconcile", "Compare HAProxy with the database now and repair drift", authAdmin, nil, proto.ReconcileResult{}, 200, s.adminReconcile},

		{http.MethodGet, "/api/openapi.json", "This document", authNone, nil, nil, 200, s.openAPI},
		{http.MethodGet, "/healthz", "Liveness: the process serves requests", authNone, nil, proto.Health{}, 200, s.healthz},
		{http.MethodGet, "/readyz", "Readiness: database and data plane are usable (503 when degraded)", authNone, nil, proto.Health{}, 200, s.readyz},
		{http.MethodGet, "/metrics", "Prometheus metrics (from loopback, or with an admin token)", authNone, nil, nil, 200, s.metrics},
	}
}
