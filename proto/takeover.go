package proto

import "time"

// ReplacedRequest is the SSH global request the cloud sends a home's
// connection just before closing it because a newer login of the same home
// took the tunnel over (another copy of the profile, here or on another
// machine). Its payload is a Replaced in JSON; the home acknowledges it,
// and the cloud closes the connection on the acknowledgement or after a
// short grace. An agent that knows it stops reconnecting instead of taking
// the tunnel back, which would flap between the two copies.
const ReplacedRequest = "homeport-replaced@homeport.dev"

// Replaced names the connection that took a home's tunnel over.
type Replaced struct {
	// By is the newer connection's address as the cloud sees it.
	By string `json:"by"`
	// Since is when the newer connection logged in.
	Since time.Time `json:"since"`
}
