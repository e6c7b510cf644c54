package api_test

import (
	"strings"
	"testing"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/proto"
)

func TestSignupNeedsApprovalBeforeATokenWorks(t *testing.T) {
	e := newEnv(t)
	var u proto.User
	e.must(201, "POST", "/api/v1/auth/signup", "", proto.SignupRequest{Username: "alice", Email: "alice@example.com", Password: "a long passphrase"}, &u)
	if u.Active || u.Role != proto.RoleUser {
		t.Fatalf("signup created %+v, want an inactive user", u)
	}
	login := proto.TokenRequest{Username: "alice", Password: "a long passphrase"}
	if got := e.refused(403, "POST", "/api/v1/auth/token", "", login); got.Code != proto.CodeInactive {
		t.Errorf("inactive login code = %s, want %s", got.Code, proto.CodeInactive)
	}
	bob := e.user("bob", true, false)
	e.refused(403, "POST", "/api/v1/admin/users/alice/approve", bob, nil)
	e.refused(401, "POST", "/api/v1/admin/users/alice/approve", "", nil)
	e.must(200, "POST", "/api/v1/admin/users/alice/approve", e.admin, nil, &u)
	if !u.Active {
		t.Fatalf("approve answered %+v", u)
	}
	var tok proto.Token
	e.must(201, "POST", "/api/v1/auth/token", "", login, &tok)
	if !strings.HasPrefix(tok.Token, "hp_") {
		t.Fatalf("token %q lacks the hp_ prefix", tok.Token)
	}
	var me proto.User
	e.must(200, "GET", "/api/v1/me", tok.Token, nil, &me)
	if me.Username != "alice" {
		t.Errorf("me = %+v", me)
	}
	// Deactivation stops the token at once.
	e.must(200, "POST", "/api/v1/admin/users/alice/deactivate", e.admin, nil, nil)
	if got := e.refused(403, "GET", "/api/v1/me", tok.Token, nil); got.Code != proto.CodeInactive {
		t.Errorf("deactivated token code = %s", got.Code)
	}
	e.refused(401, "POST", "/api/v1/auth/token", "", proto.TokenRequest{Username: "alice", Password: "wrong password!"})
	e.refused(401, "POST", "/api/v1/auth/token", "", proto.TokenRequest{Username: "nobody", Password: "a long passphrase"})
	e.refused(404, "POST", "/api/v1/admin/users/nobody/approve", e.admin, nil)
}

func TestSignupRejectsBadInputAndChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/api/v1/auth/signup", "", proto.SignupRequest{Username: "taken", Email: "t@example.com", Password: "a long passphrase"}, nil)
	bad := []struct {
		name string
		body any
		code int
	}{
		{"injection in username", proto.SignupRequest{Username: "a;clear map x", Email: "a@example.com", Password: "a long passphrase"}, 400},
		{"space in username", proto.SignupRequest{Username: "a b", Email: "a@example.com", Password: "a long passphrase"}, 400},
		{"newline in username", proto.SignupRequest{Username: "a\nb", Email: "a@example.com", Password: "a long passphrase"}, 400},
		{"unicode username", proto.SignupRequest{Username: "ålice", Email: "a@example.com", Password: "a long passphrase"}, 400},
		{"upper-case username", proto.SignupRequest{Username: "Alice", Email: "a@example.com", Password: "a long passphrase"}, 400},
		{"long username", proto.SignupRequest{Username: strings.Repeat("a", 33), Email: "a@example.com", Password: "a long passphrase"}, 400},
		{"bad email", proto.SignupRequest{Username: "carol", Email: "not-an-email", Password: "a long passphrase"}, 400},
		{"short password", proto.SignupRequest{Username: "carol", Email: "c@example.com", Password: "short"}, 400},
		{"taken username", proto.SignupRequest{Username: "taken", Email: "c@example.com", Password: "a long passphrase"}, 409},
		{"unknown field", `{"username":"carol","email":"c@example.com","password":"a long passphrase","role":"admin"}`, 400},
		{"wrong type", `{"username":1}`, 400},
		{"malformed JSON", `{"username":`, 400},
		{"empty body", ``, 400},
		{"two objects", `{} {}`, 400},
	}
	for _, b := range bad {
		e.unchanged(b.name, func() {
			if got := e.refused(b.code, "POST", "/api/v1/auth/signup", "", b.body); strings.ContainsAny(got.Message, "\n") {
				t.Errorf("%s: message has a raw newline: %q", b.name, got.Message)
			}
		})
	}
}

func TestTokenEndpointIsRateLimited(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.AuthRate = 3 })
	e.user("alice", true, false)
	wrong := proto.TokenRequest{Username: "alice", Password: "wrong password!"}
	for i := 0; i < 3; i++ {
		e.refused(401, "POST", "/api/v1/auth/token", "", wrong)
	}
	if got := e.refused(429, "POST", "/api/v1/auth/token", "", wrong); got.Code != proto.CodeRateLimited {
		t.Errorf("code = %s, want %s", got.Code, proto.CodeRateLimited)
	}
	// Even the right password waits: guessing must not be able to race the limit.
	e.refused(429, "POST", "/api/v1/auth/token", "", proto.TokenRequest{Username: "alice", Password: "password-alice"})
}

func TestTokensCanBeListedRotatedAndRevoked(t *testing.T) {
	e := newEnv(t)
	first := e.user("alice", true, false)
	var second proto.Token
	e.must(201, "POST", "/api/v1/tokens", first, map[string]string{"name": "laptop"}, &second)
	var list []proto.Token
	e.must(200, "GET", "/api/v1/tokens", first, nil, &list)
	if len(list) != 2 || list[1].Name != "laptop" {
		t.Fatalf("tokens = %+v", list)
	}
	for _, tk := range list {
		if tk.Token != "" {
			t.Errorf("listing shows a secret: %+v", tk)
		}
	}
	var rotated proto.Token
	e.must(200, "POST", "/api/v1/tokens/"+itoa(second.ID)+"/rotate", first, nil, &rotated)
	e.refused(401, "GET", "/api/v1/me", second.Token, nil)
	e.must(200, "GET", "/api/v1/me", rotated.Token, nil, nil)
	// Another user cannot touch alice's tokens.
	bob := e.user("bob", true, false)
	e.refused(404, "DELETE", "/api/v1/tokens/"+itoa(second.ID), bob, nil)
	e.refused(404, "POST", "/api/v1/tokens/"+itoa(second.ID)+"/rotate", bob, nil)
	e.must(204, "DELETE", "/api/v1/tokens/"+itoa(second.ID), first, nil, nil)
	e.refused(401, "GET", "/api/v1/me", rotated.Token, nil)
	e.refused(400, "DELETE", "/api/v1/tokens/abc", first, nil)
	e.refused(400, "POST", "/api/v1/tokens", first, map[string]string{"name": "bad\nname"})
}
