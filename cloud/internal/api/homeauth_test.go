package api_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/proto"
	wire "homeport.dev/proto/homeauth"
)

// homeCred is a home's own credential as its agent holds it: the slug and
// the private key it signs with.
type homeCred struct {
	slug   string
	signer ssh.Signer
	algo   string // signature algorithm; "" for the key's own
}

func newNonce(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// header signs a request as the home agent does.
func (c homeCred) header(t *testing.T, method, uri string, body []byte, ts time.Time, nonce string) string {
	t.Helper()
	msg := wire.Message(c.slug, method, uri, ts, nonce, body)
	sig, err := c.signer.(ssh.AlgorithmSigner).SignWithAlgorithm(rand.Reader, msg, c.algo)
	if err != nil {
		t.Fatal(err)
	}
	return wire.Request{Slug: c.slug, Time: ts, Nonce: nonce, Format: sig.Format, Blob: sig.Blob}.Header()
}

// signed sends a request signed with c's key, now, with a fresh nonce.
func (e *env) signed(c homeCred, method, path string, body any) (int, []byte, http.Header) {
	e.t.Helper()
	return e.send(method, path, body, func(req *http.Request, raw []byte) {
		req.Header.Set("Authorization", c.header(e.t, method, req.URL.RequestURI(), raw, time.Now(), newNonce(e.t)))
	})
}

// mustSigned sends a signed request that must answer want and decodes the
// answer into out.
func (e *env) mustSigned(want int, c homeCred, method, path string, body, out any) {
	e.t.Helper()
	status, b, _ := e.signed(c, method, path, body)
	if status != want {
		e.t.Fatalf("signed %s %s = %d %s, want %d", method, path, status, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// refusedWith asserts an error envelope with status want for a request sent
// with authorize, and returns the error.
func (e *env) refusedWith(want int, method, path string, body any, authorize func(*http.Request, []byte)) proto.ErrorBody {
	e.t.Helper()
	status, b, _ := e.send(method, path, body, authorize)
	var env proto.ErrorEnvelope
	if err := json.Unmarshal(b, &env); err != nil || env.Error.Code == "" || env.Error.Message == "" {
		e.t.Fatalf("%s %s: answer %d %q is not an error envelope", method, path, status, b)
	}
	if status != want {
		e.t.Fatalf("%s %s = %d %s, want %d", method, path, status, b, want)
	}
	return env.Error
}

func (e *env) refusedSigned(want int, c homeCred, method, path string, body any) proto.ErrorBody {
	e.t.Helper()
	return e.refusedWith(want, method, path, body, func(req *http.Request, raw []byte) {
		req.Header.Set("Authorization", c.header(e.t, method, req.URL.RequestURI(), raw, time.Now(), newNonce(e.t)))
	})
}

// claimWith claims a home for token with signer's key and returns the
// home's credential.
func (e *env) claimWith(token string, signer ssh.Signer, algo string) homeCred {
	e.t.Helper()
	var h proto.Home
	e.must(201, "POST", "/api/v1/homes", token, proto.ClaimHomeRequest{PublicKey: authorizedKey(signer)}, &h)
	return homeCred{slug: h.Slug, signer: signer, algo: algo}
}

func authorizedKey(s ssh.Signer) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

// keys are real keys of every accepted kind, made once per test (RSA 3072
// takes a while).
type keys struct {
	aOld, a, b, m, r, d ssh.Signer
}

func newSigner(t *testing.T, kind string) ssh.Signer {
	t.Helper()
	var (
		priv any
		err  error
	)
	switch kind {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "p256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 3072)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newKeys(t *testing.T) keys {
	return keys{aOld: newSigner(t, "ed25519"), a: newSigner(t, "ed25519"), b: newSigner(t, "p256"),
		m: newSigner(t, "rsa"), r: newSigner(t, "ed25519"), d: newSigner(t, "p384")}
}

// fixture is one cloud with every kind of credential a home can present.
type fixture struct {
	*env
	alice   string   // alice's API token
	tokenID uint64   // its id
	a       homeCred // alice's home, signing with its current key
	aOld    homeCred // the same home, signing with the key it replaced
	b       homeCred // alice's other home
	m       homeCred // mallory's home (RSA, rsa-sha2-256)
	r       homeCred // a released home
	d       homeCred // a home whose owner was deactivated
	mapping uint64   // a public mapping of A
	private uint64   // a private mapping of A
}

const spareDomain = "spare.example.org"

func newFixture(t *testing.T, k keys) *fixture {
	t.Helper()
	e := newEnv(t, func(c *config.Config) { c.HomesPerUser = 3 })
	f := &fixture{env: e, alice: e.user("alice", true, false)}
	f.aOld = e.claimWith(f.alice, k.aOld, "")
	f.a = homeCred{slug: f.aOld.slug, signer: k.a}
	newKey := authorizedKey(k.a)
	e.must(200, "PATCH", "/api/v1/homes/"+f.a.slug, f.alice, proto.PatchHomeRequest{PublicKey: &newKey}, nil)
	f.b = e.claimWith(f.alice, k.b, "")
	f.m = e.claimWith(e.user("mallory", true, false), k.m, ssh.KeyAlgoRSASHA256)
	gone := e.user("gone", true, false)
	f.r = e.claimWith(gone, k.r, "")
	e.must(204, "DELETE", "/api/v1/homes/"+f.r.slug, gone, nil, nil)
	f.d = e.claimWith(e.user("idle", true, false), k.d, "")
	if _, err := e.app.Accounts.SetActive(t.Context(), "idle", false); err != nil {
		t.Fatal(err)
	}
	home := "/api/v1/homes/" + f.a.slug
	e.addDomain(f.alice, f.a.slug, "example.com")
	e.addDomain(f.alice, f.a.slug, spareDomain)
	var m proto.Mapping
	e.must(201, "POST", home+"/mappings", f.alice, proto.MappingRequest{Scheme: "https", Host: "app.example.com"}, &m)
	f.mapping = m.ID
	e.must(201, "POST", home+"/mappings", f.alice, proto.MappingRequest{Scheme: "tcp", Private: true}, &m)
	f.private = m.ID
	var ts []proto.Token
	e.must(200, "GET", "/api/v1/tokens", f.alice, nil, &ts)
	f.tokenID = ts[0].ID
	return f
}

// concrete fills a documented path's parameters with the fixture's things.
func (f *fixture) concrete(path string) string {
	id := f.mapping
	if strings.Contains(path, "/tokens/") {
		id = f.tokenID
	}
	return strings.NewReplacer("{slug}", f.a.slug, "{domain}", spareDomain, "{username}", "idle", "{id}", itoa(id)).Replace(path)
}

// access is who may call a route, decided here independently of the route
// table.
type access string

const (
	anyone    access = "anyone"  // no credential needed; a home's is ignored
	tokenOnly access = "account" // an account API token only
	homeOwned access = "home"    // a token, or the credential of the home the path names (any home of the account where no slug)
	admins    access = "admin"
)

// TestHomeCredentialMatrix sends every route of the API (as the OpenAPI
// document, built from the route table, lists them) with every kind of
// credential: an account token, the home's own credential, another home's of
// the same and of another owner, a credential signed with a replaced key, a
// released home's and a deactivated owner's. A route added without a decision
// here fails the test.
func TestHomeCredentialMatrix(t *testing.T) {
	decisions := map[string]struct {
		access access
		body   any
	}{
		"POST /api/v1/auth/signup":                          {anyone, `{}`},
		"POST /api/v1/auth/token":                           {anyone, `{}`},
		"GET /api/v1/me":                                    {tokenOnly, nil},
		"GET /api/v1/tokens":                                {tokenOnly, nil},
		"POST /api/v1/tokens":                               {tokenOnly, `{"name":"laptop"}`},
		"POST /api/v1/tokens/{id}/rotate":                   {tokenOnly, nil},
		"DELETE /api/v1/tokens/{id}":                        {tokenOnly, nil},
		"GET /api/v1/homes":                                 {homeOwned, nil},
		"POST /api/v1/homes":                                {tokenOnly, "claim"},
		"GET /api/v1/homes/{slug}":                          {homeOwned, nil},
		"PATCH /api/v1/homes/{slug}":                        {homeOwned, "new key"},
		"DELETE /api/v1/homes/{slug}":                       {homeOwned, nil},
		"GET /api/v1/homes/{slug}/base-domains":             {homeOwned, nil},
		"POST /api/v1/homes/{slug}/base-domains":            {homeOwned, `{"domain":"new.example.net"}`},
		"DELETE /api/v1/homes/{slug}/base-domains/{domain}": {homeOwned, nil},
		"GET /api/v1/homes/{slug}/mappings":                 {homeOwned, nil},
		"POST /api/v1/homes/{slug}/mappings":                {homeOwned, `{"scheme":"http","host":"x.example.com"}`},
		"DELETE /api/v1/homes/{slug}/mappings/{id}":         {homeOwned, nil},
		"POST /api/v1/homes/{slug}/certificates":            {homeOwned, `{"host":"app.example.com"}`},
		"GET /api/v1/private-mappings":                      {homeOwned, nil},
		"GET /api/v1/admin/users":                           {admins, nil},
		"POST /api/v1/admin/users/{username}/approve":       {admins, nil},
		"POST /api/v1/admin/users/{username}/deactivate":    {admins, nil},
		"GET /api/v1/admin/homes":                           {admins, nil},
		"DELETE /api/v1/admin/homes/{slug}":                 {admins, nil},
		"GET /api/v1/admin/mappings":                        {admins, nil},
		"GET /api/v1/admin/routes":                          {admins, nil},
		"POST /api/v1/admin/reconcile":                      {admins, nil},
		"GET /api/openapi.json":                             {anyone, nil},
		"GET /healthz":                                      {anyone, nil},
		"GET /readyz":                                       {anyone, nil},
		"GET /metrics":                                      {anyone, nil},
	}
	k := newKeys(t)

	// The routes, their success status and documented security, from the
	// document the route table builds.
	type op struct {
		Security  []map[string]any           `json:"security"`
		Responses map[string]json.RawMessage `json:"responses"`
	}
	var doc struct {
		Paths map[string]map[string]op `json:"paths"`
	}
	newEnv(t).must(200, "GET", "/api/openapi.json", "", nil, &doc)
	seen := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, o := range ops {
			name := strings.ToUpper(method) + " " + path
			seen[name] = true
			d, ok := decisions[name]
			if !ok {
				t.Errorf("%s has no decision in TestHomeCredentialMatrix: decide whether a home's credential may call it", name)
				continue
			}
			success := 0
			for code := range o.Responses {
				if code != "default" {
					success = atoiT(t, code)
				}
			}
			documented := map[string]bool{}
			for _, s := range o.Security {
				for scheme := range s {
					documented[scheme] = true
				}
			}
			if want := d.access == homeOwned; documented["home"] != want || documented["bearer"] != (d.access != anyone) {
				t.Errorf("%s: openapi security %v does not match %s", name, o.Security, d.access)
			}
			t.Run(name, func(t *testing.T) { checkRoute(t, k, strings.ToUpper(method), path, d.access, d.body, success) })
		}
	}
	for name := range decisions {
		if !seen[name] {
			t.Errorf("decision for %s, which the API does not serve", name)
		}
	}
}

func atoiT(t *testing.T, s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("status %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// checkRoute runs one route of the matrix on fresh fixtures: first every
// credential that must be refused (nothing may change), then the ones that
// must succeed.
func checkRoute(t *testing.T, k keys, method, tmpl string, who access, body any, success int) {
	f := newFixture(t, k)
	path := f.concrete(tmpl)
	bodyFor := func() any {
		switch body {
		case "claim":
			return proto.ClaimHomeRequest{PublicKey: newKey(t)}
		case "new key":
			key := newKey(t)
			return proto.PatchHomeRequest{PublicKey: &key}
		}
		return body
	}
	status := func(s int, b []byte, _ http.Header) int { return s }
	expectStatus := func(what string, want int, got int, b []byte) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %s %s = %d %s, want %d", what, method, path, got, b, want)
		}
	}
	revoked := map[string]homeCred{"replaced key": f.aOld, "released home": f.r, "deactivated owner": f.d}
	others := map[string]homeCred{"same owner's other home": f.b, "other owner's home": f.m}

	if who == anyone {
		anon, _ := f.do(method, path, "", bodyFor())
		all := map[string]homeCred{"own home": f.a}
		for n, c := range revoked {
			all[n] = c
		}
		for n, c := range others {
			all[n] = c
		}
		for n, c := range all {
			s, b, _ := f.signed(c, method, path, bodyFor())
			expectStatus(n+" (as anonymous)", anon, s, b)
		}
		s, b := f.do(method, path, f.alice, bodyFor())
		expectStatus("user token (as anonymous)", anon, s, b)
		return
	}

	for n, c := range revoked {
		f.unchanged(n, func() {
			e := f.refusedSigned(401, c, method, path, bodyFor())
			if e.Code != proto.CodeUnauthorized {
				t.Errorf("%s: code %s", n, e.Code)
			}
		})
	}
	for n, c := range others {
		f.unchanged(n, func() {
			switch {
			case who != homeOwned:
				if e := f.refusedSigned(403, c, method, path, bodyFor()); !strings.Contains(e.Message, "needs an account API token") {
					t.Errorf("%s: message %q", n, e.Message)
				}
			case strings.Contains(tmpl, "{slug}"):
				// Exactly as for a home of another user: no probing.
				if e := f.refusedSigned(404, c, method, path, bodyFor()); e.Message != "you have no home "+proto.Printable(f.a.slug) {
					t.Errorf("%s: message %q", n, e.Message)
				}
			default:
				s, b, _ := f.signed(c, method, path, bodyFor())
				expectStatus(n, success, s, b)
			}
		})
	}
	if who == homeOwned {
		s, b, _ := f.signed(f.a, method, path, bodyFor())
		expectStatus("own home", success, s, b)
	} else {
		f.unchanged("own home", func() {
			if e := f.refusedSigned(403, f.a, method, path, bodyFor()); !strings.Contains(e.Message, "needs an account API token") {
				t.Errorf("own home: message %q", e.Message)
			}
		})
	}

	// The account's token, on a fresh cloud (the home may have released itself).
	g := newFixture(t, k)
	want := success
	if who == admins {
		want = 403
	}
	expectStatus("user token", want, status(g.send(method, g.concrete(tmpl), bodyFor(), func(r *http.Request, _ []byte) {
		r.Header.Set("Authorization", "Bearer "+g.alice)
	})), nil)
}
