package tunnel

import (
	"bytes"
	"fmt"
	"net"

	"golang.org/x/crypto/ssh"
)

// HostKeyMismatchError reports a cloud that presented another host key than
// the one pinned in the profile: either the cloud was reinstalled (re-register)
// or something sits between the home and the cloud. The supervisor never
// connects in that case.
type HostKeyMismatchError struct {
	Addr      string
	Presented string // SHA256 fingerprint of the key the cloud presented
	Pinned    string // SHA256 fingerprint of the profile's key
}

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("host key mismatch: the cloud presented %s, the profile pins %s; re-register or fix the profile", e.Presented, e.Pinned)
}

// pinnedHostKey accepts exactly pinned, like ssh.FixedHostKey, but with an
// error that says what to do.
func pinnedHostKey(pinned ssh.PublicKey) ssh.HostKeyCallback {
	want := pinned.Marshal()
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if bytes.Equal(key.Marshal(), want) {
			return nil
		}
		return &HostKeyMismatchError{Addr: hostname, Presented: ssh.FingerprintSHA256(key), Pinned: ssh.FingerprintSHA256(pinned)}
	}
}

// hostKeyAlgorithms asks the cloud for a key of the pinned type, so a cloud
// with several host keys presents the pinned one rather than its favourite.
func hostKeyAlgorithms(pinned ssh.PublicKey) []string {
	switch t := pinned.Type(); t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	default:
		return []string{t}
	}
}
