package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/problem"
	"homeport.dev/proto"
	wire "homeport.dev/proto/homeauth"
)

// codeOfStatus names the errors echo itself raises (routing, body limit).
func codeOfStatus(status int) string {
	switch status {
	case http.StatusNotFound:
		return proto.CodeNotFound
	case http.StatusMethodNotAllowed, http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return proto.CodeInvalid
	case http.StatusRequestEntityTooLarge:
		return proto.CodeTooLarge
	case http.StatusTooManyRequests:
		return proto.CodeRateLimited
	case http.StatusUnauthorized:
		return proto.CodeUnauthorized
	case http.StatusForbidden:
		return proto.CodeForbidden
	}
	return proto.CodeInternal
}

// handleError writes every error as the proto envelope. Unexpected errors are
// logged and reported without their details.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var (
		status int
		body   proto.ErrorBody
		p      *problem.Error
		he     *echo.HTTPError
	)
	switch {
	case errors.As(err, &p):
		status, body.Code = problem.HTTPStatus(p.Kind)
		body.Message, body.Field = p.Message, p.Field
	case errors.As(err, &he):
		status, body.Code = he.Code, codeOfStatus(he.Code)
		body.Message = http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			body.Message = m
		}
		if he.Code == http.StatusRequestEntityTooLarge {
			body.Message = "request body is larger than " + maxBody + "; send less"
		}
	default:
		status, body.Code = http.StatusInternalServerError, proto.CodeInternal
		body.Message = "internal error; the cloud's log has the details"
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
	}
	if status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="homeport", `+wire.Scheme+` realm="homeport"`)
	}
	if err := c.JSON(status, proto.ErrorEnvelope{Error: body}); err != nil {
		s.log.Debug("write error response", slog.Any("err", err))
	}
}
