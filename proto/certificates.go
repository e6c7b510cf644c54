package proto

import "time"

// CertificateOrderRequest reports a certificate a home obtained for one of
// its mapping's hosts (POST /api/v1/homes/{slug}/certificates). The cloud
// counts them per registered domain, as the CA's rate limits do.
type CertificateOrderRequest struct {
	Host string `json:"host"`
}

// CertificateOrder is a recorded certificate order.
type CertificateOrder struct {
	Host string `json:"host"`
	// Domain is the registered domain the CA counts the order against (the
	// host's public suffix plus one label).
	Domain    string    `json:"domain"`
	CreatedAt time.Time `json:"created_at"`
}
