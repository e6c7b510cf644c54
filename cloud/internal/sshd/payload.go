package sshd

import (
	"fmt"

	"golang.org/x/crypto/ssh"
)

// parseForward decodes the payload of a tcpip-forward or
// cancel-tcpip-forward global request (RFC 4254 7.1).
func parseForward(b []byte) (forwardRequest, error) {
	var f forwardRequest
	if err := ssh.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("malformed forward request: %w", err)
	}
	if f.Port > 65535 {
		return f, fmt.Errorf("malformed forward request: port %d", f.Port)
	}
	return f, nil
}

// parseDirect decodes the extra data of a direct-tcpip channel open
// (RFC 4254 7.2).
func parseDirect(b []byte) (directPayload, error) {
	var d directPayload
	if err := ssh.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("malformed direct-tcpip request: %w", err)
	}
	if d.Port > 65535 || d.OriginPort > 65535 {
		return d, fmt.Errorf("malformed direct-tcpip request: port out of range")
	}
	return d, nil
}
