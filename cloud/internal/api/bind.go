package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/problem"
)

// decode reads exactly one JSON object into v (whatever the Content-Type
// says: `curl -d` sends form encoding by default), refusing unknown fields so a
// typo ("bandwith_limit") is an error rather than silently ignored.
func decode(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return problem.New(problem.Invalid, "the body must hold exactly one JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var (
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
		httpErr   *echo.HTTPError
	)
	switch {
	case errors.As(err, &httpErr): // the body limit
		return httpErr
	case errors.Is(err, io.EOF):
		return problem.New(problem.Invalid, "the request body is empty; send a JSON object")
	case errors.As(err, &typeErr):
		return &problem.Error{Kind: problem.Invalid, Field: typeErr.Field, Message: fmt.Sprintf("must be a JSON %s, not %s", typeErr.Type, typeErr.Value)}
	case errors.As(err, &syntaxErr):
		return problem.New(problem.Invalid, "malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return problem.New(problem.Invalid, "%s; see GET /api/openapi.json for the accepted fields", strings.TrimPrefix(err.Error(), "json: "))
	}
	return problem.New(problem.Invalid, "unreadable body: %v", err)
}

// idParam parses a numeric path parameter.
func idParam(c echo.Context, name string) (uint64, error) {
	id, err := strconv.ParseUint(c.Param(name), 10, 64)
	if err != nil || id == 0 {
		return 0, problem.New(problem.Invalid, "%s must be a positive integer", name)
	}
	return id, nil
}
