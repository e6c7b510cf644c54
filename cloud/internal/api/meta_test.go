package api_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"homeport.dev/proto"
)

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	e.must(200, "GET", "/api/openapi.json", "", nil, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	param := regexp.MustCompile(`:([a-z_]+)`)
	n := 0
	for _, r := range e.app.API.Echo().Routes() {
		p := param.ReplaceAllString(r.Path, "{$1}")
		if !strings.HasPrefix(p, "/api/") && p != "/healthz" && p != "/readyz" && p != "/metrics" {
			continue // a web UI page, not part of the API
		}
		if _, ok := doc.Paths[p][strings.ToLower(r.Method)]; !ok {
			t.Errorf("%s %s is served but not in openapi.json", r.Method, p)
		}
		n++
	}
	if n < 25 {
		t.Errorf("only %d routes registered", n)
	}
	// The documented PATCH body names the real fields.
	var patch struct {
		RequestBody struct {
			Content map[string]struct {
				Schema map[string]string `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
	}
	if err := json.Unmarshal(doc.Paths["/api/v1/homes/{slug}"]["patch"], &patch); err != nil {
		t.Fatal(err)
	}
	if ref := patch.RequestBody.Content["application/json"].Schema["$ref"]; ref != "#/components/schemas/PatchHomeRequest" {
		t.Errorf("PATCH body schema = %q", ref)
	}
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	e := newEnv(t)
	var h proto.Health
	e.must(200, "GET", "/healthz", "", nil, &h)
	e.must(200, "GET", "/readyz", "", nil, &h)
	if h.Status != "ready" || h.Checks["database"] != "ok" {
		t.Errorf("readyz = %+v", h)
	}
	alice := e.user("alice", true, false)
	e.claim(alice)
	e.refused(404, "GET", "/api/v1/nothing", alice, nil)
	status, body := e.do("GET", "/metrics", "", nil)
	if status != 200 {
		t.Fatalf("metrics status %d", status)
	}
	for _, want := range []string{
		"homeport_homes 1",
		"homeport_users 2",
		`homeport_api_requests_total{method="POST",route="/api/v1/homes",status="201"} 1`,
		`homeport_api_requests_total{method="GET",route="unmatched",status="404"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
