package api_test

import (
	"strings"
	"testing"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/proto"
)

// TestSignupModes: --signup open makes accounts active at once, approval
// (the default) inactive, invite and closed refuse signup and create nothing.
func TestSignupModes(t *testing.T) {
	for _, mode := range []string{"", proto.SignupOpen, proto.SignupApproval, proto.SignupInvite, proto.SignupClosed} {
		t.Run("mode "+mode, func(t *testing.T) {
			e := newEnv(t, func(c *config.Config) {
				if mode != "" {
					c.Signup = mode
				}
			})
			req := proto.SignupRequest{Username: "alice", Email: "alice@example.com", Password: "a long passphrase"}
			login := proto.TokenRequest{Username: "alice", Password: "a long passphrase"}
			switch mode {
			case proto.SignupOpen:
				var u proto.User
				e.must(201, "POST", "/api/v1/auth/signup", "", req, &u)
				if !u.Active || u.Role != proto.RoleUser {
					t.Fatalf("open signup made %+v", u)
				}
				e.must(201, "POST", "/api/v1/auth/token", "", login, nil)
			case "", proto.SignupApproval:
				var u proto.User
				e.must(201, "POST", "/api/v1/auth/signup", "", req, &u)
				if u.Active {
					t.Fatalf("approval signup made an active account")
				}
				e.refused(403, "POST", "/api/v1/auth/token", "", login)
			default:
				e.unchanged("signup "+mode, func() {
					got := e.refused(403, "POST", "/api/v1/auth/signup", "", req)
					want := map[string]string{proto.SignupInvite: "invitation", proto.SignupClosed: "closed"}[mode]
					if !strings.Contains(got.Message, want) {
						t.Errorf("message %q lacks %q", got.Message, want)
					}
				})
			}
		})
	}
	if _, err := config.Parse([]string{"--signup", "sometimes"}); err == nil || !strings.Contains(err.Error(), "--signup") {
		t.Errorf("--signup sometimes: %v", err)
	}
}

// TestInvitationThroughTheAPI: an admin's invitation (link shown once, not
// in the list) makes an active account with its role, even on a cloud whose
// signup is closed; the link works once.
func TestInvitationThroughTheAPI(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Signup = proto.SignupClosed })
	var inv proto.Invitation
	e.must(201, "POST", "/api/v1/admin/invitations", e.admin, proto.InvitationRequest{Role: proto.RoleViewer, ValidHours: 2}, &inv)
	if !strings.HasPrefix(inv.Token, "hpi_") || !strings.HasSuffix(inv.URL, "/invite/"+inv.Token) {
		t.Fatalf("invitation = %+v", inv)
	}
	var list []proto.Invitation
	e.must(200, "GET", "/api/v1/admin/invitations", e.admin, nil, &list)
	if len(list) != 1 || list[0].Token != "" || list[0].URL != "" || list[0].Role != proto.RoleViewer {
		t.Fatalf("list = %+v; want one invitation without its link", list)
	}
	accept := proto.AcceptInvitationRequest{Token: inv.Token, Username: "vera", Email: "vera@example.com", Password: "a long passphrase"}
	var u proto.User
	e.must(201, "POST", "/api/v1/auth/invitations/accept", "", accept, &u)
	if !u.Active || u.Role != proto.RoleViewer {
		t.Fatalf("accepted = %+v", u)
	}
	var tok proto.Token
	e.must(201, "POST", "/api/v1/auth/token", "", proto.TokenRequest{Username: "vera", Password: "a long passphrase"}, &tok)
	e.must(200, "GET", "/api/v1/admin/users", tok.Token, nil, nil)                                   // a viewer reads the admin views
	e.refused(403, "POST", "/api/v1/homes", tok.Token, proto.ClaimHomeRequest{PublicKey: newKey(t)}) // and changes nothing
	e.refused(403, "POST", "/api/v1/admin/users/vera/approve", tok.Token, nil)
	accept.Username = "vera2"
	e.unchanged("second accept", func() { e.refused(409, "POST", "/api/v1/auth/invitations/accept", "", accept) })
	e.unchanged("forged link", func() {
		accept.Token = "hpi_" + strings.Repeat("a", 52)
		e.refused(404, "POST", "/api/v1/auth/invitations/accept", "", accept)
	})
	e.refused(400, "POST", "/api/v1/admin/invitations", e.admin, proto.InvitationRequest{Role: "root"})
}

// TestAdminResetsAPasswordChangesARoleDeletesAUser through the API.
func TestAdminResetsAPasswordChangesARoleDeletesAUser(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	var r proto.PasswordReset
	e.must(201, "POST", "/api/v1/admin/users/alice/password-reset", e.admin, nil, &r)
	if !strings.HasSuffix(r.URL, "/reset/"+r.Token) {
		t.Fatalf("reset = %+v", r)
	}
	e.must(200, "POST", "/api/v1/auth/password-reset", "", proto.ResetPasswordRequest{Token: r.Token, Password: "a brand new passphrase"}, nil)
	e.refused(404, "POST", "/api/v1/auth/password-reset", "", proto.ResetPasswordRequest{Token: r.Token, Password: "yet another passphrase"})
	e.must(201, "POST", "/api/v1/auth/token", "", proto.TokenRequest{Username: "alice", Password: "a brand new passphrase"}, nil)

	var u proto.User
	e.must(200, "POST", "/api/v1/admin/users/alice/role", e.admin, proto.RoleRequest{Role: proto.RoleOperator}, &u)
	if u.Role != proto.RoleOperator {
		t.Fatalf("role = %+v", u)
	}
	e.must(200, "GET", "/api/v1/admin/homes", alice, nil, nil) // the same token, the new role
	if got := e.refused(409, "POST", "/api/v1/admin/users/root/role", e.admin, proto.RoleRequest{Role: proto.RoleUser}); !strings.Contains(got.Message, "last active admin") {
		t.Errorf("demoting the last admin: %q", got.Message)
	}
	e.refused(409, "DELETE", "/api/v1/admin/users/root", e.admin, nil)

	e.must(204, "DELETE", "/api/v1/admin/users/alice", e.admin, nil, nil)
	e.refused(401, "GET", "/api/v1/me", alice, nil)
	var homes []proto.Home
	e.must(200, "GET", "/api/v1/admin/homes", e.admin, nil, &homes)
	for _, x := range homes {
		if x.Slug == h.Slug {
			t.Errorf("alice's home %s survived her deletion", h.Slug)
		}
	}
	e.refused(404, "DELETE", "/api/v1/admin/users/alice", e.admin, nil)
}

// TestViewerHomeCredentialChangesNothing: a home whose owner became a viewer
// still reads itself with its own credential, but may change nothing.
func TestViewerHomeCredentialChangesNothing(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	h := e.claimWith(alice, newSigner(t, "ed25519"), "")
	e.must(200, "POST", "/api/v1/admin/users/alice/role", e.admin, proto.RoleRequest{Role: proto.RoleViewer}, nil)
	e.mustSigned(200, h, "GET", "/api/v1/homes/"+h.slug, nil, nil)
	e.unchanged("viewer's home adds a domain", func() {
		if got := e.refusedSigned(403, h, "POST", "/api/v1/homes/"+h.slug+"/base-domains", proto.BaseDomainRequest{Domain: "alice.example.com"}); !strings.Contains(got.Message, "your role (viewer)") {
			t.Errorf("message %q", got.Message)
		}
	})
	e.unchanged("viewer's home releases itself", func() { e.refusedSigned(403, h, "DELETE", "/api/v1/homes/"+h.slug, nil) })
}
