package api_test

import (
	"strings"
	"testing"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/proto"
)

// TestChangesAreBudgetedPerAccount: an account looping over changes (each
// one a database write and an audit record) is told to slow down past
// --write-rate, its tokens and its homes' credentials drawing on one
// budget; reads go on, and another account is not affected.
func TestChangesAreBudgetedPerAccount(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.WriteRate = 5 })
	alice := e.user("alice", true, false)
	bob := e.user("bob", true, false)
	h := e.claimWith(alice, newSigner(t, "ed25519"), "") // change 1
	path := "/api/v1/homes/" + h.slug + "/base-domains"
	for i := range 3 { // changes 2-4, with the account's token
		e.must(201, "POST", path, alice, proto.BaseDomainRequest{Domain: "d" + string(rune('a'+i)) + ".example.com"}, nil)
	}
	e.mustSigned(201, h, "POST", path, proto.BaseDomainRequest{Domain: "home.example.com"}, nil) // change 5, the home's own
	status, body := e.do("POST", path, alice, proto.BaseDomainRequest{Domain: "over.example.com"})
	if status != 429 || !strings.Contains(string(body), "too many changes") {
		t.Fatalf("change 6 = %d %s, want 429", status, body)
	}
	if s, body, _ := e.signed(h, "POST", path, proto.BaseDomainRequest{Domain: "over2.example.com"}); s != 429 {
		t.Fatalf("the home's change past the account's budget = %d %s, want 429", s, body)
	}
	var ds []proto.BaseDomain
	e.must(200, "GET", path, alice, nil, &ds)
	if len(ds) != 4 {
		t.Errorf("%d base domains, want the 4 allowed", len(ds))
	}
	e.must(201, "POST", "/api/v1/homes", bob, proto.ClaimHomeRequest{PublicKey: authorizedKey(newSigner(t, "ed25519"))}, nil)
}
