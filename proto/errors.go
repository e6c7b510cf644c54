package proto

// ErrorEnvelope is the body of every API error:
// {"error":{"code":"...","message":"..."}}.
type ErrorEnvelope struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody carries a stable machine-readable code, a sentence for humans
// that says what to do, and optionally the offending field.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Error codes. The HTTP status follows from the code (see the cloud's api
// package); clients should switch on the code, not on the message.
const (
	CodeInvalid      = "invalid_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeInactive     = "account_inactive"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeQuota        = "quota_exceeded"
	CodeNoCapacity   = "no_capacity"
	CodeTooLarge     = "body_too_large"
	CodeRateLimited  = "rate_limited"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal_error"
)
