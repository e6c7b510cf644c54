// Package proto holds what the cloud and the home agree on: the REST API's
// request and response types, the error envelope, and the validation rules for
// names and ports that both sides apply before anything is stored or sent.
package proto

// APIVersion is the REST API's version; every path lives under APIPrefix.
const (
	APIVersion = "v1"
	APIPrefix  = "/api/" + APIVersion
)
