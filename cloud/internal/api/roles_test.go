package api_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/config"
	"homeport.dev/proto"
)

// Who may call a route, decided here independently of the route table and
// of account's capability table.
var (
	everyRole  = []string{proto.RoleAdmin, proto.RoleOperator, proto.RoleUser, proto.RoleViewer}
	homeOwners = []string{proto.RoleAdmin, proto.RoleOperator, proto.RoleUser}
	readers    = []string{proto.RoleAdmin, proto.RoleOperator, proto.RoleViewer}
	operators  = []string{proto.RoleAdmin, proto.RoleOperator}
	adminsOnly = []string{proto.RoleAdmin}
	anonymous  = []string(nil) // no credential needed
)

// roleDecisions: every route of the API and the roles that may call it;
// callers, the matrix's rows: the four roles and anonymous.
var roleDecisions = map[string][]string{
	"POST /api/v1/auth/signup":                           anonymous,
	"POST /api/v1/auth/token":                            anonymous,
	"POST /api/v1/auth/invitations/accept":               anonymous,
	"POST /api/v1/auth/password-reset":                   anonymous,
	"GET /api/openapi.json":                              anonymous,
	"GET /healthz":                                       anonymous,
	"GET /readyz":                                        anonymous,
	"GET /metrics":                                       anonymous, // from loopback; else readers (TestMetricsNeedAReader)
	"GET /api/v1/me":                                     everyRole,
	"GET /api/v1/tokens":                                 everyRole,
	"POST /api/v1/tokens":                                everyRole, // a viewer reads through the API with a token
	"POST /api/v1/tokens/{id}/rotate":                    everyRole,
	"DELETE /api/v1/tokens/{id}":                         everyRole,
	"GET /api/v1/homes":                                  everyRole,
	"GET /api/v1/homes/{slug}":                           everyRole,
	"GET /api/v1/homes/{slug}/base-domains":              everyRole,
	"GET /api/v1/homes/{slug}/mappings":                  everyRole,
	"GET /api/v1/private-mappings":                       everyRole,
	"GET /api/v1/audit":                                  everyRole,
	"POST /api/v1/homes":                                 homeOwners,
	"PATCH /api/v1/homes/{slug}":                         homeOwners,
	"DELETE /api/v1/homes/{slug}":                        homeOwners,
	"POST /api/v1/homes/{slug}/base-domains":             homeOwners,
	"DELETE /api/v1/homes/{slug}/base-domains/{domain}":  homeOwners,
	"POST /api/v1/homes/{slug}/mappings":                 homeOwners,
	"DELETE /api/v1/homes/{slug}/mappings/{id}":          homeOwners,
	"POST /api/v1/homes/{slug}/certificates":             homeOwners,
	"GET /api/v1/admin/users":                            readers,
	"GET /api/v1/admin/homes":                            readers,
	"GET /api/v1/admin/mappings":                         readers,
	"GET /api/v1/admin/routes":                           readers,
	"GET /api/v1/admin/edges":                            readers,
	"GET /api/v1/admin/invitations":                      readers,
	"GET /api/v1/admin/audit":                            readers,
	"POST /api/v1/admin/users/{username}/approve":        operators,
	"POST /api/v1/admin/users/{username}/deactivate":     operators,
	"DELETE /api/v1/admin/homes/{slug}":                  operators,
	"POST /api/v1/admin/reconcile":                       operators,
	"POST /api/v1/admin/homes/{slug}/edge":               operators,
	"POST /api/v1/admin/users/{username}/role":           adminsOnly,
	"POST /api/v1/admin/users/{username}/password-reset": adminsOnly,
	"DELETE /api/v1/admin/users/{username}":              adminsOnly,
	"POST /api/v1/admin/invitations":                     adminsOnly,
	"DELETE /api/v1/admin/invitations/{id}":              adminsOnly,
}

// member is one caller of the role matrix with the things it owns: a home
// with a mapping and a spare base domain, a token; and, for admin routes, a
// user and home of its own to act on, and an invitation.
type member struct {
	role, token, slug string
	tokenID, mapping  uint64
	target            string // a user admin routes act on
	targetHome        string
	invitation        uint64
}

func (e *env) member(role string) member {
	e.t.Helper()
	ctx := context.Background()
	m := member{role: role, target: "nobody", targetHome: "nohome", invitation: 999}
	u, err := e.app.Accounts.Create(ctx, account.NewUser{Username: "m-" + role, Email: role + "@example.com", Password: "password-" + role, Active: true})
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := e.app.Accounts.CreateToken(ctx, u, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	m.token, m.tokenID = tok.Token, tok.ID
	m.slug = e.claim(m.token).Slug
	e.addDomain(m.token, m.slug, role+".example.com")
	e.addDomain(m.token, m.slug, "spare-"+role+".example.org")
	var mp proto.Mapping
	e.must(201, "POST", "/api/v1/homes/"+m.slug+"/mappings", m.token, proto.MappingRequest{Scheme: "https", Host: "app." + role + ".example.com"}, &mp)
	m.mapping = mp.ID
	if _, err := e.app.Accounts.SetRole(ctx, account.CLI, u.Username, role); err != nil { // a viewer keeps the home it had as a user
		e.t.Fatal(err)
	}
	if !slices.Contains(operators, role) {
		return m // refused on admin routes that change something: nothing to act on
	}
	m.target = "t-" + role
	m.targetHome = e.claim(e.user(m.target, true, false)).Slug
	inv, err := e.app.Accounts.CreateInvitation(ctx, account.CLI, proto.RoleUser, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	m.invitation = inv.ID
	return m
}

// concrete fills a documented path for m: its own home, domain, mapping and
// token; on admin routes its target user and home, its invitation.
func (m member) concrete(path string) string {
	slug, id := m.slug, m.mapping
	switch {
	case strings.HasPrefix(path, "/api/v1/admin/"):
		slug, id = m.targetHome, m.invitation
	case strings.Contains(path, "/tokens/"):
		id = m.tokenID
	}
	return strings.NewReplacer("{slug}", slug, "{domain}", "spare-"+m.role+".example.org", "{username}", m.target, "{id}", itoa(id)).Replace(path)
}

// body is a valid request body of route for m, or nil.
func (m member) body(t *testing.T, route string) any {
	switch route {
	case "POST /api/v1/tokens":
		return map[string]string{"name": "laptop"}
	case "POST /api/v1/homes":
		return proto.ClaimHomeRequest{PublicKey: newKey(t)}
	case "PATCH /api/v1/homes/{slug}":
		key := newKey(t)
		return proto.PatchHomeRequest{PublicKey: &key}
	case "POST /api/v1/homes/{slug}/base-domains":
		return proto.BaseDomainRequest{Domain: "new-" + m.role + ".example.net"}
	case "POST /api/v1/homes/{slug}/mappings":
		return proto.MappingRequest{Scheme: "http", Host: "x." + m.role + ".example.com"}
	case "POST /api/v1/homes/{slug}/certificates":
		return proto.CertificateOrderRequest{Host: "app." + m.role + ".example.com"}
	case "POST /api/v1/admin/users/{username}/role":
		return proto.RoleRequest{Role: proto.RoleViewer}
	case "POST /api/v1/admin/invitations":
		return proto.InvitationRequest{Role: proto.RoleUser}
	case "POST /api/v1/admin/homes/{slug}/edge":
		return proto.MoveHomeRequest{Edge: "east"} // e.liveEdge
	}
	if strings.HasPrefix(route, "POST /api/v1/auth/") {
		return `{}`
	}
	return nil
}

// TestRoleMatrix sends every route of the API (as the OpenAPI document,
// built from the route table, lists them) as an admin, an operator, a user,
// a viewer and anonymously. A role the decision above leaves out gets 403
// (anonymous 401) and changes nothing; a role it lists gets the documented
// success on its own things. A route without a decision here fails the test.
func TestRoleMatrix(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]openAPIOp `json:"paths"`
	}
	newEnv(t).must(200, "GET", "/api/openapi.json", "", nil, &doc)
	eachOperation(t, doc.Paths, roleDecisions, "TestRoleMatrix: decide which roles may call it", func(route string, allowed []string, _ openAPIOp, success int) {
		t.Run(route, func(t *testing.T) { checkRoles(t, route, allowed, success) })
	})
}

func checkRoles(t *testing.T, route string, allowed []string, success int) {
	e := newEnv(t, func(c *config.Config) { c.HomesPerUser = 2 })
	method, tmpl, _ := strings.Cut(route, " ")
	members := map[string]member{}
	for _, r := range everyRole {
		members[r] = e.member(r)
	}
	// After the claims: their homes stay on no edge.
	e.liveEdge("east")
	if allowed == nil { // anonymous: a credential changes nothing
		m := members[proto.RoleUser]
		anon, _ := e.do(method, m.concrete(tmpl), "", m.body(t, route))
		for _, r := range everyRole {
			m := members[r]
			if got, b := e.do(method, m.concrete(tmpl), m.token, m.body(t, route)); got != anon {
				t.Errorf("%s: %d %s, want %d as anonymous", r, got, b, anon)
			}
		}
		return
	}
	m := members[proto.RoleUser]
	e.unchanged("anonymous", func() {
		if got := e.refused(401, method, m.concrete(tmpl), "", m.body(t, route)); got.Code != proto.CodeUnauthorized {
			t.Errorf("anonymous: code %s", got.Code)
		}
	})
	for _, r := range everyRole {
		if slices.Contains(allowed, r) {
			continue
		}
		m := members[r]
		e.unchanged(r, func() {
			if got := e.refused(403, method, m.concrete(tmpl), m.token, m.body(t, route)); got.Code != proto.CodeForbidden || !strings.Contains(got.Message, "your role ("+r+")") {
				t.Errorf("%s: %s %q", r, got.Code, got.Message)
			}
		})
	}
	for _, r := range allowed {
		m := members[r]
		if got, b := e.do(method, m.concrete(tmpl), m.token, m.body(t, route)); got != success {
			t.Errorf("%s: %s = %d %s, want %d", r, m.concrete(tmpl), got, b, success)
		}
	}
}
