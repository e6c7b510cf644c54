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
	e.must(201, "POST", home+"/mappings", f.alice, proto.MappingRequest{Name: "private", Scheme: "tcp", Private: true}, &m)
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
	type decision struct {
		access access
		body   any
	}
	decisions := map[string]decision{
		"POST /api/v1/auth/signup":                           {anyone, `{}`},
		"POST /api/v1/auth/token":                            {anyone, `{}`},
		"POST /api/v1/auth/invitations/accept":               {anyone, `{}`},
		"POST /api/v1/auth/password-reset":                   {anyone, `{}`},
		"GET /api/v1/me":                                     {tokenOnly, nil},
		"GET /api/v1/tokens":                                 {tokenOnly, nil},
		"POST /api/v1/tokens":                                {tokenOnly, `{"name":"laptop"}`},
		"POST /api/v1/tokens/{id}/rotate":                    {tokenOnly, nil},
		"DELETE /api/v1/tokens/{id}":                         {tokenOnly, nil},
		"GET /api/v1/audit":                                  {tokenOnly, nil},
		"GET /api/v1/homes":                                  {homeOwned, nil},
		"POST /api/v1/homes":                                 {tokenOnly, "claim"},
		"GET /api/v1/homes/{slug}":                           {homeOwned, nil},
		"PATCH /api/v1/homes/{slug}":                         {homeOwned, "new key"},
		"DELETE /api/v1/homes/{slug}":                        {homeOwned, nil},
		"GET /api/v1/homes/{slug}/base-domains":              {homeOwned, nil},
		"POST /api/v1/homes/{slug}/base-domains":             {homeOwned, `{"domain":"new.example.net"}`},
		"DELETE /api/v1/homes/{slug}/base-domains/{domain}":  {homeOwned, nil},
		"GET /api/v1/homes/{slug}/mappings":                  {homeOwned, nil},
		"POST /api/v1/homes/{slug}/mappings":                 {homeOwned, `{"scheme":"http","host":"x.example.com"}`},
		"DELETE /api/v1/homes/{slug}/mappings/{id}":          {homeOwned, nil},
		"POST /api/v1/homes/{slug}/certificates":             {homeOwned, `{"host":"app.example.com"}`},
		"GET /api/v1/private-mappings":                       {homeOwned, nil},
		"GET /api/v1/admin/users":                            {admins, nil},
		"POST /api/v1/admin/users/{username}/approve":        {admins, nil},
		"POST /api/v1/admin/users/{username}/deactivate":     {admins, nil},
		"POST /api/v1/admin/users/{username}/role":           {admins, `{"role":"viewer"}`},
		"POST /api/v1/admin/users/{username}/password-reset": {admins, nil},
		"DELETE /api/v1/admin/users/{username}":              {admins, nil},
		"GET /api/v1/admin/invitations":                      {admins, nil},
		"POST /api/v1/admin/invitations":                     {admins, `{"role":"user"}`},
		"DELETE /api/v1/admin/invitations/{id}":              {admins, nil},
		"GET /api/v1/admin/homes":                            {admins, nil},
		"DELETE /api/v1/admin/homes/{slug}":                  {admins, nil},
		"GET /api/v1/admin/mappings":                         {admins, nil},
		"GET /api/v1/admin/routes":                           {admins, nil},
		"POST /api/v1/admin/reconcile":                       {admins, nil},
		"GET /api/v1/admin/edges":                            {admins, nil},
		"POST /api/v1/admin/homes/{slug}/edge":               {admins, `{"edge":"east"}`},
		"GET /api/v1/admin/audit":                            {admins, nil},
		"GET /api/openapi.json":                              {anyone, nil},
		"GET /healthz":                                       {anyone, nil},
		"GET /readyz":                                        {anyone, nil},
		"GET /metrics":                                       {anyone, nil},
	}
	k := newKeys(t)

	// The routes, their success status and documented security, from the
	// document the route table builds.
	var doc struct {
		Paths      map[string]map[string]openAPIOp `json:"paths"`
		Components struct {
			SecuritySchemes map[string]struct{ Type, Scheme, Description string } `json:"securitySchemes"`
		} `json:"components"`
	}
	newEnv(t).must(200, "GET", "/api/openapi.json", "", nil, &doc)
	if s := doc.Components.SecuritySchemes["home"]; s.Type != "http" || s.Scheme != wire.Scheme || !strings.Contains(s.Description, "signed with the home's SSH key") {
		t.Errorf("openapi securitySchemes.home = %+v", s)
	}
	eachOperation(t, doc.Paths, decisions, "TestHomeCredentialMatrix: decide whether a home's credential may call it", func(name string, d decision, o openAPIOp, success int) {
		documented := map[string]bool{}
		for _, s := range o.Security {
			for scheme := range s {
				documented[scheme] = true
			}
		}
		if want := d.access == homeOwned; documented["home"] != want || documented["bearer"] != (d.access != anyone) {
			t.Errorf("%s: openapi security %v does not match %s", name, o.Security, d.access)
		}
		method, path, _ := strings.Cut(name, " ")
		t.Run(name, func(t *testing.T) { checkRoute(t, k, method, path, d.access, d.body, success) })
	})
}

// openAPIOp is an operation of the API's OpenAPI document.
type openAPIOp struct {
	Security  []map[string]any           `json:"security"`
	Responses map[string]json.RawMessage `json:"responses"`
}

// eachOperation calls fn for every operation of paths (the OpenAPI
// document's) with its route ("GET /api/v1/..."), its decision and its
// documented success status. A route without a decision fails the test,
// with undecided saying where to decide; so does a decision for a route the
// API does not serve.
func eachOperation[D any](t *testing.T, paths map[string]map[string]openAPIOp, decisions map[string]D, undecided string, fn func(route string, d D, o openAPIOp, success int)) {
	t.Helper()
	seen := map[string]bool{}
	for path, ops := range paths {
		for method, o := range ops {
			route := strings.ToUpper(method) + " " + path
			seen[route] = true
			d, ok := decisions[route]
			if !ok {
				t.Errorf("%s has no decision in %s", route, undecided)
				continue
			}
			success := 0
			for code := range o.Responses {
				if code != "default" {
					success = atoiT(t, code)
				}
			}
			fn(route, d, o, success)
		}
	}
	for route := range decisions {
		if !seen[route] {
			t.Errorf("decision for %s, which the API does not serve", route)
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

// TestHomeCredentialRotatesItsKey: a home replaces its own key with its
// credential; the old key's SSH session closes, requests signed with the old
// key are refused and the new key's work. The limit is readable, not
// changeable, through the home's credential.
func TestHomeCredentialRotatesItsKey(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	old := e.claimWith(alice, newSigner(t, "ed25519"), "")
	path := "/api/v1/homes/" + old.slug
	var h proto.Home
	e.mustSigned(200, old, "GET", path, nil, &h)
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.SSH.HostKey))
	if err != nil {
		t.Fatal(err)
	}
	dial := func(s ssh.Signer) (*ssh.Client, error) {
		return ssh.Dial("tcp", e.ssh, &ssh.ClientConfig{User: old.slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(s)},
			HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 5 * time.Second})
	}
	tunnel, err := dial(old.signer)
	if err != nil {
		t.Fatal(err)
	}
	defer tunnel.Close()
	closed := make(chan error, 1)
	go func() { closed <- tunnel.Wait() }()

	// The limit: read through the home's credential, changed only by the account.
	e.must(200, "PATCH", path, alice, `{"bandwidth_limit_kbps": 5000}`, nil)
	e.mustSigned(200, old, "GET", path, nil, &h)
	if h.BandwidthLimitKbps == nil || *h.BandwidthLimitKbps != 5000 {
		t.Errorf("the home reads limit %v, want 5000", h.BandwidthLimitKbps)
	}
	spare := newKey(t)
	for _, body := range []any{`{"bandwidth_limit_kbps": 500}`, `{"bandwidth_limit_kbps": null}`,
		proto.PatchHomeRequest{PublicKey: &spare, BandwidthLimitKbps: proto.Some[int64](500)}} {
		e.unchanged("limit via home credential", func() {
			got := e.refusedSigned(403, old, "PATCH", path, body)
			if got.Message != "a home can read its limit; change it in the web UI or with an API token" {
				t.Errorf("message %q", got.Message)
			}
		})
	}

	next := homeCred{slug: old.slug, signer: newSigner(t, "p256")}
	key := authorizedKey(next.signer)
	e.mustSigned(200, old, "PATCH", path, proto.PatchHomeRequest{PublicKey: &key}, &h)
	if h.PublicKey != key {
		t.Fatalf("public key after rotation = %q, want %q", h.PublicKey, key)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Error("the old key's SSH session is still open 10 s after the key was replaced")
	}
	if got := e.refusedSigned(401, old, "GET", path, nil); !strings.Contains(got.Message, "key was replaced") {
		t.Errorf("old key: message %q", got.Message)
	}
	e.mustSigned(200, next, "GET", path, nil, nil)
	if c, err := dial(old.signer); err == nil {
		c.Close()
		t.Error("the replaced key still logs in over SSH")
	}
	c, err := dial(next.signer)
	if err != nil {
		t.Fatalf("the new key does not log in over SSH: %v", err)
	}
	c.Close()
}

// TestHomeCredentialOutlivesTheAccountsTokens: rotating and then revoking
// every API token of the account leaves the home's credential working.
func TestHomeCredentialOutlivesTheAccountsTokens(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	a := e.claimWith(alice, newSigner(t, "ed25519"), "")
	home := "/api/v1/homes/" + a.slug
	e.addDomain(alice, a.slug, "example.com")

	var tok proto.Token
	e.must(201, "POST", "/api/v1/tokens", alice, `{"name":"second"}`, &tok)
	var ts []proto.Token
	e.must(200, "GET", "/api/v1/tokens", alice, nil, &ts)
	var rotated proto.Token
	e.must(200, "POST", "/api/v1/tokens/"+itoa(ts[0].ID)+"/rotate", alice, nil, &rotated)
	e.refused(401, "GET", "/api/v1/me", alice, nil)
	e.mustSigned(200, a, "GET", home, nil, nil)
	for _, t := range ts { // the token that authenticates the deletions last
		if t.ID != rotated.ID {
			e.must(204, "DELETE", "/api/v1/tokens/"+itoa(t.ID), rotated.Token, nil, nil)
		}
	}
	e.must(204, "DELETE", "/api/v1/tokens/"+itoa(rotated.ID), rotated.Token, nil, nil)
	e.refused(401, "GET", "/api/v1/me", rotated.Token, nil)
	e.refused(401, "GET", "/api/v1/me", tok.Token, nil)

	var m proto.Mapping
	e.mustSigned(201, a, "POST", home+"/mappings", proto.MappingRequest{Scheme: "https", Host: "app.example.com"}, &m)
	var ms []proto.Mapping
	e.mustSigned(200, a, "GET", home+"/mappings", nil, &ms)
	if len(ms) != 1 || ms[0].Host != "app.example.com" {
		t.Errorf("mappings = %+v", ms)
	}
	e.mustSigned(200, a, "GET", "/api/v1/private-mappings", nil, nil)
	e.mustSigned(204, a, "DELETE", home+"/mappings/"+itoa(m.ID), nil, nil)
}

// TestHomeCredentialRefusesReplayedAndAlteredRequests: a captured request
// works once; one signed too far from the cloud's clock, or changed in body,
// path, query, method or home, or signed with SHA-1, is refused and changes
// nothing.
func TestHomeCredentialRefusesReplayedAndAlteredRequests(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.HomesPerUser = 2 })
	alice := e.user("alice", true, false)
	a := e.claimWith(alice, newSigner(t, "ed25519"), "")
	b := e.claimWith(alice, newSigner(t, "p256"), "")
	home := "/api/v1/homes/" + a.slug
	e.addDomain(alice, a.slug, "example.com")
	var m1, m2 proto.Mapping
	e.must(201, "POST", home+"/mappings", alice, proto.MappingRequest{Scheme: "https", Host: "one.example.com"}, &m1)
	e.must(201, "POST", home+"/mappings", alice, proto.MappingRequest{Scheme: "https", Host: "two.example.com"}, &m2)

	// with sends method path body with a header made by sign from what was
	// sent (the test alters one part of what it signs).
	with := func(method, path string, body any, sign func(uri string, raw []byte) string) func(*http.Request, []byte) {
		return func(req *http.Request, raw []byte) { req.Header.Set("Authorization", sign(req.URL.RequestURI(), raw)) }
	}
	refused := func(what string, want int, method, path string, body any, sign func(uri string, raw []byte) string) proto.ErrorBody {
		t.Helper()
		var got proto.ErrorBody
		e.unchanged(what, func() { got = e.refusedWith(want, method, path, body, with(method, path, body, sign)) })
		return got
	}
	now := time.Now()

	// Replay: the same header twice.
	newMapping := `{"scheme":"https","host":"three.example.com"}`
	header := ""
	e.send("POST", home+"/mappings", newMapping, func(req *http.Request, raw []byte) {
		header = a.header(t, "POST", req.URL.RequestURI(), raw, now, newNonce(t))
		req.Header.Set("Authorization", header)
	})
	got := refused("replay", 401, "POST", home+"/mappings", newMapping, func(string, []byte) string { return header })
	if !strings.Contains(got.Message, "already used") {
		t.Errorf("replay: %q", got.Message)
	}

	for _, skew := range []time.Duration{-wire.MaxSkew - time.Minute, wire.MaxSkew + time.Minute} {
		got := refused("skew", 401, "GET", home, nil, func(uri string, raw []byte) string {
			return a.header(t, "GET", uri, raw, now.Add(skew), newNonce(t))
		})
		if !strings.Contains(got.Message, "check this machine's clock") {
			t.Errorf("skew %s: %q", skew, got.Message)
		}
	}
	altered := func(what, method, path string, body any, sign func(uri string, raw []byte) string) {
		t.Helper()
		got := refused(what, 401, method, path, body, sign)
		if !strings.Contains(got.Message, "signature does not match") {
			t.Errorf("%s: %q", what, got.Message)
		}
	}
	altered("body", "POST", home+"/mappings", `{"scheme":"https","host":"evil.example.com"}`, func(uri string, _ []byte) string {
		return a.header(t, "POST", uri, []byte(newMapping), time.Now(), newNonce(t))
	})
	altered("path", "DELETE", home+"/mappings/"+itoa(m2.ID), nil, func(string, []byte) string {
		return a.header(t, "DELETE", home+"/mappings/"+itoa(m1.ID), nil, time.Now(), newNonce(t))
	})
	altered("query", "GET", home+"?x=2", nil, func(string, []byte) string {
		return a.header(t, "GET", home+"?x=1", nil, time.Now(), newNonce(t))
	})
	altered("method", "DELETE", home, nil, func(uri string, raw []byte) string {
		return a.header(t, "GET", uri, raw, time.Now(), newNonce(t))
	})
	// A's key signing for B: another home's slug.
	altered("home", "GET", "/api/v1/homes/"+b.slug, nil, func(uri string, raw []byte) string {
		return homeCred{slug: b.slug, signer: a.signer}.header(t, "GET", uri, raw, time.Now(), newNonce(t))
	})
	// A signature whose algorithm does not fit the home's key.
	got = refused("format", 401, "GET", home, nil, func(uri string, raw []byte) string {
		r, _ := wire.Parse(a.header(t, "GET", uri, raw, time.Now(), newNonce(t)))
		r.Format = ssh.KeyAlgoECDSA256
		return r.Header()
	})
	if !strings.Contains(got.Message, "does not match") {
		t.Errorf("format: %q", got.Message)
	}
	for _, h := range []string{wire.Scheme + " slug=" + a.slug, wire.Scheme + " slug=nosuchhome, ts=1, nonce=00000000000000000000000000000000, sig=ssh-ed25519:AAAA"} {
		refused("malformed "+h, 401, "GET", home, nil, func(string, []byte) string { return h })
	}
	got = refused("unknown home", 401, "GET", "/api/v1/homes/nosuchhome", nil, func(uri string, raw []byte) string {
		return homeCred{slug: "nosuchhome", signer: a.signer}.header(t, "GET", uri, raw, time.Now(), newNonce(t))
	})
	if !strings.Contains(got.Message, "register the home again") {
		t.Errorf("unknown home: %q", got.Message)
	}

	// RSA: SHA-2 signatures only.
	mallory := e.user("mallory", true, false)
	rsaSigner := newSigner(t, "rsa")
	sha1 := e.claimWith(mallory, rsaSigner, ssh.KeyAlgoRSA)
	got = refused("ssh-rsa", 401, "GET", "/api/v1/homes/"+sha1.slug, nil, func(uri string, raw []byte) string {
		return sha1.header(t, "GET", uri, raw, time.Now(), newNonce(t))
	})
	if !strings.Contains(got.Message, "SHA-1") {
		t.Errorf("ssh-rsa: %q", got.Message)
	}
	for _, algo := range []string{ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512} {
		e.mustSigned(200, homeCred{slug: sha1.slug, signer: rsaSigner, algo: algo}, "GET", "/api/v1/homes/"+sha1.slug, nil, nil)
	}

	// A signed body is bounded like any other.
	big := `{"domain":"` + strings.Repeat("a", 100<<10) + `.com"}`
	e.unchanged("oversized", func() {
		if s, b, _ := e.signed(a, "POST", home+"/base-domains", big); s != 413 {
			t.Errorf("oversized signed body = %d %s", s, b)
		}
	})
}

// TestHomeCredentialNonceBudget: a home may have at most 4096 signed
// requests remembered at once; the next is refused with 429 and Retry-After,
// and other homes and the account's token are unaffected.
func TestHomeCredentialNonceBudget(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.HomesPerUser = 2 })
	alice := e.user("alice", true, false)
	a := e.claimWith(alice, newSigner(t, "ed25519"), "")
	b := e.claimWith(alice, newSigner(t, "ed25519"), "")
	path := "/api/v1/homes/" + a.slug + "/base-domains"
	for i := range 4096 {
		if s, body, _ := e.signed(a, "GET", path, nil); s != 200 {
			t.Fatalf("request %d = %d %s", i+1, s, body)
		}
	}
	s, body, h := e.signed(a, "GET", path, nil)
	if s != 429 || !strings.Contains(string(body), "more than 4096 signed requests") || h.Get("Retry-After") == "" {
		t.Errorf("request 4097 = %d %s (Retry-After %q), want 429 with a message and Retry-After", s, body, h.Get("Retry-After"))
	}
	e.mustSigned(200, b, "GET", "/api/v1/homes/"+b.slug, nil, nil)
	e.must(200, "GET", path, alice, nil, nil)
}

// TestPrivateMappingsOfTheAccount: any credential of the account lists the
// private mappings of all its homes (home connect); a home sees only itself
// in GET /homes, another account sees none of them.
func TestPrivateMappingsOfTheAccount(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.HomesPerUser = 2 })
	alice := e.user("alice", true, false)
	a := e.claimWith(alice, newSigner(t, "ed25519"), "")
	b := e.claimWith(alice, newSigner(t, "p256"), "")
	e.addDomain(alice, a.slug, "example.com")
	var pa, pb, public proto.Mapping
	e.mustSigned(201, a, "POST", "/api/v1/homes/"+a.slug+"/mappings", proto.MappingRequest{Name: "gpu-ui", Scheme: "tcp", Private: true}, &pa)
	e.mustSigned(201, a, "POST", "/api/v1/homes/"+a.slug+"/mappings", proto.MappingRequest{Scheme: "https", Host: "app.example.com"}, &public)
	e.mustSigned(201, b, "POST", "/api/v1/homes/"+b.slug+"/mappings", proto.MappingRequest{Name: "gpu-ui", Scheme: "tcp", Private: true}, &pb)
	m := e.claimWith(e.user("mallory", true, false), newSigner(t, "ed25519"), "")

	want := []proto.PrivateMapping{
		{Home: a.slug, Name: "gpu-ui", ID: pa.ID, Scheme: "tcp", TunnelPort: pa.TunnelPort, ProxyProtocol: pa.ProxyProtocol, State: pa.State},
		{Home: b.slug, Name: "gpu-ui", ID: pb.ID, Scheme: "tcp", TunnelPort: pb.TunnelPort, ProxyProtocol: pb.ProxyProtocol, State: pb.State},
	}
	for name, get := range map[string]func(out any){
		"token":  func(out any) { e.must(200, "GET", "/api/v1/private-mappings", alice, nil, out) },
		"home a": func(out any) { e.mustSigned(200, a, "GET", "/api/v1/private-mappings", nil, out) },
		"home b": func(out any) { e.mustSigned(200, b, "GET", "/api/v1/private-mappings", nil, out) },
	} {
		var got []proto.PrivateMapping
		get(&got)
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("%s: private mappings = %+v, want %+v", name, got, want)
		}
	}
	var none []proto.PrivateMapping
	e.mustSigned(200, m, "GET", "/api/v1/private-mappings", nil, &none)
	if len(none) != 0 {
		t.Errorf("mallory's home sees %+v", none)
	}
	var hs []proto.Home
	e.mustSigned(200, b, "GET", "/api/v1/homes", nil, &hs)
	if len(hs) != 1 || hs[0].Slug != b.slug {
		t.Errorf("home b lists %+v", hs)
	}
	e.must(200, "GET", "/api/v1/homes", alice, nil, &hs)
	if len(hs) != 2 {
		t.Errorf("the account lists %d homes, want 2", len(hs))
	}
}
