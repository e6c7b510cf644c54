package api

import (
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"homeport.dev/proto"
	wire "homeport.dev/proto/homeauth"
)

var pathParam = regexp.MustCompile(`:([a-z_]+)`)

// homeSchemeDoc describes a home's own credential (proto/homeauth).
var homeSchemeDoc = "A request signed with the home's SSH key: `Authorization: " + wire.Scheme +
	" slug=SLUG, ts=UNIX_SECONDS, nonce=32_HEX, sig=ALGORITHM:BASE64URL`, the SSH signature (ssh-ed25519, ecdsa-sha2-*, " +
	"rsa-sha2-256/512; never ssh-rsa) of the lines `homeport-home-request-v1`, slug, METHOD, request URI, ts, nonce and " +
	"the body's SHA-256 in hex, joined by newlines. Valid within " + wire.MaxSkew.String() + " of the cloud's clock, each nonce once. " +
	"It acts only on its own home (any other slug is 404), may change only its public_key (key rotation), and is refused " +
	"(403) by routes that do not list it. Replacing the key, releasing the home or deactivating its owner revokes it."

// openAPIDoc builds an OpenAPI 3.0 document from the route table; schemas
// come from the Go types by reflection, named after the type.
func (s *Server) openAPIDoc() map[string]any {
	schemas := map[string]any{}
	paths := map[string]map[string]any{}
	for _, r := range s.routes {
		p := pathParam.ReplaceAllString(r.path, "{$1}")
		op := map[string]any{"summary": r.summary, "operationId": operationID(r)}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(r.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		if filters, paged := listQueries[r.path]; paged && r.method == http.MethodGet {
			for _, q := range append(slices.Clone(pageParams), filters...) {
				params = append(params, map[string]any{"name": q[0], "in": "query", "description": q[1], "schema": map[string]any{"type": "string"}})
			}
		}
		if params != nil {
			op["parameters"] = params
		}
		switch r.auth {
		case authUser, authAdmin:
			op["security"] = []any{map[string]any{"bearer": []any{}}}
		case authHome:
			op["security"] = []any{map[string]any{"bearer": []any{}}, map[string]any{"home": []any{}}}
		}
		if r.body != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(r.body), schemas)}}}
		}
		ok := map[string]any{"description": http.StatusText(r.status)}
		if r.resp != nil {
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(r.resp), schemas)}}
		}
		errRef := map[string]any{"description": "error", "content": map[string]any{
			"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(proto.ErrorEnvelope{}), schemas)}}}
		op["responses"] = map[string]any{strconv.Itoa(r.status): ok, "default": errRef}
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(r.method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]any{"title": "homeport cloud API", "version": proto.APIVersion},
		"paths":   paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "An account API token."},
				"home":   map[string]any{"type": "http", "scheme": wire.Scheme, "description": homeSchemeDoc},
			},
		},
	}
}

func operationID(r route) string {
	p := strings.NewReplacer(proto.APIPrefix+"/", "", "/api/", "", "/:", "_by_", "/", "_", "-", "_", ":", "").Replace(r.path)
	return strings.ToLower(r.method) + "_" + strings.Trim(p, "_")
}

var timeType = reflect.TypeOf(time.Time{})

// schemaOf describes t, registering named structs under components.
func schemaOf(t reflect.Type, schemas map[string]any) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		s := schemaOf(t.Elem(), schemas)
		s["nullable"] = true
		return s
	case t.Kind() == reflect.Struct && strings.HasPrefix(t.Name(), "Optional["):
		s := schemaOf(t.Field(1).Type.Elem(), schemas) // Optional[T].Value is *T
		s["nullable"] = true
		return s
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), schemas)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), schemas)}
	case reflect.Struct:
		name := t.Name()
		if _, done := schemas[name]; !done {
			schemas[name] = map[string]any{} // placeholder breaks recursion
			props := map[string]any{}
			addFields(t, props, schemas)
			schemas[name] = map[string]any{"type": "object", "properties": props}
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func addFields(t reflect.Type, props map[string]any, schemas map[string]any) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			addFields(f.Type, props, schemas)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type, schemas)
	}
}

func (s *Server) openAPI(c echo.Context) error {
	return c.JSON(http.StatusOK, s.openAPIDoc())
}
