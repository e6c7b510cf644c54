package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/certorders"
	"homeport.dev/proto"
)

// reportCertificate records a certificate the home obtained, so the cloud
// can count orders per registered domain (certorders).
func (s *Server) reportCertificate(c echo.Context) error {
	h, err := s.home(c)
	if err != nil {
		return err
	}
	var req proto.CertificateOrderRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	o, err := s.Certificates.Record(c.Request().Context(), h, req.Host)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, certorders.ToProto(o))
}
