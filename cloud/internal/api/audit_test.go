package api_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// newRecords returns the audit records written after id, oldest first.
func (e *env) newRecords(after uint64) []store.AuditRecord {
	e.t.Helper()
	var rs []store.AuditRecord
	if err := e.app.DB.Where("id > ?", after).Order("id").Find(&rs).Error; err != nil {
		e.t.Fatal(err)
	}
	return rs
}

func (e *env) lastRecord() uint64 {
	e.t.Helper()
	var ids []uint64
	if err := e.app.DB.Model(&store.AuditRecord{}).Order("id DESC").Limit(1).Pluck("id", &ids).Error; err != nil {
		e.t.Fatal(err)
	}
	if len(ids) == 0 {
		return 0
	}
	return ids[0]
}

// TestAuditRecordsEveryChange makes each kind of change through the API, as
// a user with a token, as a home with its own credential and as an admin:
// each writes exactly one record naming the right actor, the client's
// address and the home; a refused change writes none. Secrets never appear.
func TestAuditRecordsEveryChange(t *testing.T) {
	e := newEnv(t)
	var (
		carol, tok2, resetLink, invite string
		tokID, invID                   uint64
		home                           proto.Home
		cred                           homeCred
		m1, m2                         proto.Mapping
		secrets                        []string
		last                           uint64 // the newest record before a step
	)
	newSigner1, newSigner2 := newSigner(t, "ed25519"), newSigner(t, "ed25519")
	homePath := func() string { return "/api/v1/homes/" + home.Slug }
	steps := []struct {
		name                string
		do                  func()
		kind, who, by, home string // by: the actor's kind; home "*" means the claimed home
	}{
		{"signup", func() {
			e.must(201, "POST", "/api/v1/auth/signup", "", proto.SignupRequest{Username: "carol", Email: "carol@example.com", Password: "carol's first password"}, nil)
		}, "user.signup", "carol", "user", ""},
		{"signup with a taken name", func() {
			e.refused(409, "POST", "/api/v1/auth/signup", "", proto.SignupRequest{Username: "carol", Email: "c@example.com", Password: "another long password"})
		}, "", "", "", ""},
		{"approve", func() { e.must(200, "POST", "/api/v1/admin/users/carol/approve", e.admin, nil, nil) }, "user.approve", "root", "admin", ""},
		{"token with a password", func() {
			var tk proto.Token
			e.must(201, "POST", "/api/v1/auth/token", "", proto.TokenRequest{Username: "carol", Password: "carol's first password"}, &tk)
			carol = tk.Token
			secrets = append(secrets, carol)
		}, "token.create", "carol", "user", ""},
		{"token with a wrong password", func() {
			e.refused(401, "POST", "/api/v1/auth/token", "", proto.TokenRequest{Username: "carol", Password: "not her password"})
		}, "", "", "", ""},
		{"create token", func() {
			var tk proto.Token
			e.must(201, "POST", "/api/v1/tokens", carol, map[string]string{"name": "laptop"}, &tk)
			tokID, tok2 = tk.ID, tk.Token
			secrets = append(secrets, tok2)
		}, "token.create", "carol", "user", ""},
		{"rotate token", func() {
			var tk proto.Token
			e.must(200, "POST", fmt.Sprintf("/api/v1/tokens/%d/rotate", tokID), carol, nil, &tk)
			secrets = append(secrets, tk.Token)
		}, "token.rotate", "carol", "user", ""},
		{"delete token", func() { e.must(204, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", tokID), carol, nil, nil) }, "token.delete", "carol", "user", ""},
		{"delete a token that is gone", func() { e.refused(404, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", tokID), carol, nil) }, "", "", "", ""},
		{"claim", func() {
			cred = e.claimWith(carol, newSigner(t, "ed25519"), "")
			e.must(200, "GET", "/api/v1/homes/"+cred.slug, carol, nil, &home)
		}, "home.claim", "carol", "user", "*"},
		{"claim beyond the quota", func() {
			e.refused(409, "POST", "/api/v1/homes", carol, proto.ClaimHomeRequest{PublicKey: newKey(t)})
		}, "", "", "", ""},
		{"register a domain (home)", func() {
			e.mustSigned(201, cred, "POST", homePath()+"/base-domains", proto.BaseDomainRequest{Domain: "carol.example"}, nil)
		}, "domain.register", "*", "home", "*"},
		{"register an overlapping domain", func() {
			e.refused(409, "POST", homePath()+"/base-domains", carol, proto.BaseDomainRequest{Domain: "www.carol.example"})
		}, "", "", "", ""},
		{"create a mapping (home)", func() {
			e.mustSigned(201, cred, "POST", homePath()+"/mappings", proto.MappingRequest{Scheme: "https", Host: "app.carol.example"}, &m1)
		}, "mapping.create", "*", "home", "*"},
		{"create a mapping (user)", func() {
			e.must(201, "POST", homePath()+"/mappings", carol, proto.MappingRequest{Scheme: "http", Host: "www.carol.example"}, &m2)
		}, "mapping.create", "carol", "user", "*"},
		{"create a mapping twice", func() {
			e.refused(409, "POST", homePath()+"/mappings", carol, proto.MappingRequest{Scheme: "http", Host: "www.carol.example"})
		}, "", "", "", ""},
		{"report a certificate (home)", func() {
			e.mustSigned(201, cred, "POST", homePath()+"/certificates", proto.CertificateOrderRequest{Host: "app.carol.example"}, nil)
		}, "certificate.report", "*", "home", "*"},
		{"set the limit", func() { e.must(200, "PATCH", homePath(), carol, `{"bandwidth_limit_kbps": 5000}`, nil) }, "home.limit", "carol", "user", "*"},
		{"set a limit out of range", func() { e.refused(400, "PATCH", homePath(), carol, `{"bandwidth_limit_kbps": 1}`) }, "", "", "", ""},
		{"change the key (home)", func() {
			e.mustSigned(200, cred, "PATCH", homePath(), proto.PatchHomeRequest{PublicKey: ptr(authorizedKey(newSigner1))}, nil)
			cred.signer = newSigner1
		}, "home.key", "*", "home", "*"},
		{"change the key (user)", func() {
			e.must(200, "PATCH", homePath(), carol, proto.PatchHomeRequest{PublicKey: ptr(authorizedKey(newSigner2))}, nil)
			cred.signer = newSigner2
		}, "home.key", "carol", "user", "*"},
		{"delete a mapping (home)", func() {
			e.mustSigned(204, cred, "DELETE", fmt.Sprintf("%s/mappings/%d", homePath(), m1.ID), nil, nil)
		}, "mapping.delete", "*", "home", "*"},
		{"delete a mapping (user)", func() {
			e.must(204, "DELETE", fmt.Sprintf("%s/mappings/%d", homePath(), m2.ID), carol, nil, nil)
		}, "mapping.delete", "carol", "user", "*"},
		{"remove a domain", func() { e.must(204, "DELETE", homePath()+"/base-domains/carol.example", carol, nil, nil) }, "domain.remove", "carol", "user", "*"},
		{"change a role", func() {
			e.must(200, "POST", "/api/v1/admin/users/carol/role", e.admin, proto.RoleRequest{Role: proto.RoleOperator}, nil)
		}, "user.role", "root", "admin", ""},
		{"demote the last admin", func() {
			e.refused(409, "POST", "/api/v1/admin/users/root/role", e.admin, proto.RoleRequest{Role: proto.RoleUser})
		}, "", "", "", ""},
		{"make a reset link", func() {
			var r proto.PasswordReset
			e.must(201, "POST", "/api/v1/admin/users/carol/password-reset", e.admin, nil, &r)
			resetLink = r.Token
			secrets = append(secrets, resetLink)
		}, "user.reset_link", "root", "admin", ""},
		{"reset the password", func() {
			e.must(200, "POST", "/api/v1/auth/password-reset", "", proto.ResetPasswordRequest{Token: resetLink, Password: "carol's second password"}, nil)
		}, "user.password_reset", "carol", "user", ""},
		{"reuse the reset link", func() {
			e.refused(404, "POST", "/api/v1/auth/password-reset", "", proto.ResetPasswordRequest{Token: resetLink, Password: "carol's third password"})
		}, "", "", "", ""},
		{"invite", func() {
			var inv proto.Invitation
			e.must(201, "POST", "/api/v1/admin/invitations", e.admin, proto.InvitationRequest{Role: proto.RoleUser}, &inv)
			invite = inv.Token
			secrets = append(secrets, invite)
		}, "invitation.create", "root", "admin", ""},
		{"accept the invitation", func() {
			e.must(201, "POST", "/api/v1/auth/invitations/accept", "", proto.AcceptInvitationRequest{Token: invite, Username: "dave", Email: "dave@example.com", Password: "dave's long password"}, nil)
		}, "invitation.accept", "dave", "user", ""},
		{"accept it again", func() {
			e.refused(409, "POST", "/api/v1/auth/invitations/accept", "", proto.AcceptInvitationRequest{Token: invite, Username: "eve", Email: "eve@example.com", Password: "eve's long password"})
		}, "", "", "", ""},
		{"revoke an invitation", func() {
			var inv proto.Invitation
			e.must(201, "POST", "/api/v1/admin/invitations", e.admin, proto.InvitationRequest{Role: proto.RoleViewer}, &inv)
			invID = inv.ID
			secrets = append(secrets, inv.Token)
			last = e.lastRecord() // the create is checked above
			e.must(204, "DELETE", fmt.Sprintf("/api/v1/admin/invitations/%d", invID), e.admin, nil, nil)
		}, "invitation.revoke", "root", "admin", ""},
		{"deactivate", func() { e.must(200, "POST", "/api/v1/admin/users/dave/deactivate", e.admin, nil, nil) }, "user.deactivate", "root", "admin", ""},
		{"release a home (admin)", func() { e.must(204, "DELETE", "/api/v1/admin/homes/"+home.Slug, e.admin, nil, nil) }, "home.release", "root", "admin", "*"},
		{"release it again", func() { e.refused(404, "DELETE", "/api/v1/admin/homes/"+home.Slug, e.admin, nil) }, "", "", "", ""},
		{"delete a user", func() { e.must(204, "DELETE", "/api/v1/admin/users/dave", e.admin, nil, nil) }, "user.delete", "root", "admin", ""},
	}
	for _, s := range steps {
		last = e.lastRecord()
		s.do()
		got := e.newRecords(last)
		if s.kind == "" {
			if len(got) != 0 {
				t.Errorf("%s was refused but wrote %d audit record(s): %+v", s.name, len(got), got)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%s wrote %d audit records, want 1: %+v", s.name, len(got), got)
			continue
		}
		r := got[0]
		who, slug := s.who, s.home
		if who == "*" {
			who = home.Slug
		}
		if slug == "*" {
			slug = home.Slug
		}
		if r.Kind != s.kind || r.Actor != who || r.ActorKind != s.by || r.Home != slug || r.Addr != "127.0.0.1" {
			t.Errorf("%s recorded %s by %s %s from %q on home %q; want %s by %s %s from 127.0.0.1 on home %q",
				s.name, r.Kind, r.ActorKind, r.Actor, r.Addr, r.Home, s.kind, s.by, who, slug)
		}
	}

	// Nothing secret is in the log: no token, link, password or hash.
	var all []store.AuditRecord
	e.app.DB.Find(&all)
	dump := fmt.Sprintf("%+v", all)
	for _, s := range append(secrets, "carol's first password", "carol's second password", "argon2id") {
		if strings.Contains(dump, s) {
			t.Errorf("the audit log holds a secret (%.12s...)", s)
		}
	}
	// Before and after show what changed.
	var limit store.AuditRecord
	e.app.DB.Where("kind = ?", "home.limit").Take(&limit)
	if limit.Before != `{"bandwidth_limit_kbps":null}` || limit.After != `{"bandwidth_limit_kbps":5000}` {
		t.Errorf("home.limit before %s after %s", limit.Before, limit.After)
	}
}

// TestAuditQuery reads the log through GET /api/v1/admin/audit with each
// filter and walks it page by page with the cursor; a user's GET
// /api/v1/audit holds only their own account's records; others get 403.
func TestAuditQuery(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	bob := e.user("bob", true, false)
	ha, hb := e.claim(alice), e.claim(bob)
	e.addDomain(alice, ha.Slug, "alice.example")
	for i := range 3 {
		e.must(201, "POST", "/api/v1/homes/"+ha.Slug+"/mappings", alice, proto.MappingRequest{Scheme: "http", Host: fmt.Sprintf("m%d.alice.example", i)}, nil)
	}
	e.addDomain(bob, hb.Slug, "bob.example")

	list := func(token, path string) proto.AuditPage {
		t.Helper()
		var p proto.AuditPage
		e.must(200, "GET", path, token, nil, &p)
		return p
	}
	kinds := func(p proto.AuditPage) []string {
		var out []string
		for _, r := range p.Records {
			out = append(out, r.Kind+":"+r.Actor)
		}
		return out
	}
	all := list(e.admin, "/api/v1/admin/audit")
	// root, alice and bob: user.create and token.create each, two claims, two domains, three mappings.
	if len(all.Records) != 13 || all.Next != "" {
		t.Fatalf("the whole log has %d records (next %q): %v", len(all.Records), all.Next, kinds(all))
	}
	for i := 1; i < len(all.Records); i++ {
		if all.Records[i].ID >= all.Records[i-1].ID {
			t.Fatalf("records are not newest first: %v", kinds(all))
		}
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"actor=alice&kind=mapping", []string{"mapping.create:alice", "mapping.create:alice", "mapping.create:alice"}},
		{"kind=mapping.create&home=" + ha.Slug, []string{"mapping.create:alice", "mapping.create:alice", "mapping.create:alice"}},
		{"home=" + hb.Slug, []string{"domain.register:bob", "home.claim:bob"}},
		{"kind=domain.", []string{"domain.register:bob", "domain.register:alice"}},
		{"actor=bob&kind=home.claim", []string{"home.claim:bob"}},
		{"since=1h", kinds(all)},
		{"since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), nil},
		{"until=2001-01-01", nil},
		{"actor=nobody", nil},
	} {
		if got := kinds(list(e.admin, "/api/v1/admin/audit?"+c.query)); !slices.Equal(got, c.want) {
			t.Errorf("?%s = %v, want %v", c.query, got, c.want)
		}
	}
	// The cursor walks every record once, in order.
	var walked []uint64
	path := "/api/v1/admin/audit?limit=4"
	for range 10 {
		p := list(e.admin, path)
		for _, r := range p.Records {
			walked = append(walked, r.ID)
		}
		if p.Next == "" {
			break
		}
		path = "/api/v1/admin/audit?limit=4&cursor=" + p.Next
	}
	var want []uint64
	for _, r := range all.Records {
		want = append(want, r.ID)
	}
	if !slices.Equal(walked, want) {
		t.Errorf("pages of 4 walked %v, want %v", walked, want)
	}
	for _, bad := range []string{"limit=0", "limit=5000", "cursor=abc", "since=yesterday", "kind=" + url.QueryEscape("mapping%")} {
		e.refused(400, "GET", "/api/v1/admin/audit?"+bad, e.admin, nil)
	}

	// A user reads their own account's records, not others'.
	// (The harness makes accounts and their first tokens as the system.)
	own := kinds(list(bob, "/api/v1/audit"))
	if want := []string{"domain.register:bob", "home.claim:bob", "token.create:cloud", "user.create:cloud"}; !slices.Equal(own, want) {
		t.Errorf("bob reads %v, want %v", own, want)
	}
	e.refused(403, "GET", "/api/v1/admin/audit", bob, nil)
	e.refused(401, "GET", "/api/v1/audit", "", nil)
}

// TestAuditSSHEvents: a home's login, takeover and logout are recorded with
// its address, a refused login too; a burst of refusals from one address
// leaves one record.
func TestAuditSSHEvents(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	cred := e.claimWith(alice, newSigner(t, "ed25519"), "")
	var h proto.Home
	e.must(200, "GET", "/api/v1/homes/"+cred.slug, alice, nil, &h)
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.SSH.HostKey))
	if err != nil {
		t.Fatal(err)
	}
	dial := func(user string, s ssh.Signer) (*ssh.Client, error) {
		return ssh.Dial("tcp", e.ssh, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(s)},
			HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 5 * time.Second})
	}
	// wait polls for the records an SSH event writes from the server's goroutine.
	wait := func(kinds ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var got []string
			e.app.DB.Model(&store.AuditRecord{}).Where("kind LIKE ?", "ssh.%").Order("id").Pluck("kind", &got)
			if slices.Equal(got, kinds) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("ssh records %v, want %v", got, kinds)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	first, err := dial(cred.slug, cred.signer)
	if err != nil {
		t.Fatal(err)
	}
	wait("ssh.connect")
	second, err := dial(cred.slug, cred.signer)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	first.Wait() // taken over
	// The second connect from the same address within the minute is left out.
	wait("ssh.connect", "ssh.takeover", "ssh.disconnect")
	for range 5 {
		if c, err := dial("intruder", newSigner(t, "ed25519")); err == nil {
			c.Close()
			t.Fatal("an unknown key logged in")
		}
	}
	wait("ssh.connect", "ssh.takeover", "ssh.disconnect", "ssh.refused")
	var r store.AuditRecord
	e.app.DB.Where("kind = ?", "ssh.takeover").Take(&r)
	if r.ActorKind != proto.ActorHome || r.Actor != cred.slug || r.Home != cred.slug || r.Addr != "127.0.0.1" {
		t.Errorf("takeover recorded as %+v", r)
	}
}

func ptr[T any](v T) *T { return &v }
