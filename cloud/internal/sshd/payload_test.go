package sshd

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/ssh"
)

// FuzzParseForward: whatever a home sends as a forward request, the parser
// either refuses it or returns exactly what was encoded, with a real port.
func FuzzParseForward(f *testing.F) {
	f.Add(ssh.Marshal(forwardRequest{Addr: "127.0.0.1", Port: 20000}))
	f.Add(ssh.Marshal(forwardRequest{Addr: "", Port: 0}))
	f.Add(ssh.Marshal(forwardRequest{Addr: "0.0.0.0", Port: 1 << 20}))
	f.Add([]byte{0, 0, 0, 9, 'l', 'o'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseForward(b)
		if err != nil {
			return
		}
		if fr.Port > 65535 {
			t.Fatalf("port %d accepted", fr.Port)
		}
		if again := ssh.Marshal(fr); !bytes.Equal(again, b) {
			t.Fatalf("accepted %x but it encodes as %x", b, again)
		}
	})
}

// FuzzParseDirect: the same for direct-tcpip channel opens.
func FuzzParseDirect(f *testing.F) {
	f.Add(ssh.Marshal(directPayload{Host: "127.0.0.1", Port: 20001, OriginAddr: "10.0.0.1", OriginPort: 5555}))
	f.Add(ssh.Marshal(directPayload{Host: "localhost\x00evil", Port: 65536}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseDirect(b)
		if err != nil {
			return
		}
		if d.Port > 65535 || d.OriginPort > 65535 {
			t.Fatalf("ports %d/%d accepted", d.Port, d.OriginPort)
		}
		if again := ssh.Marshal(d); !bytes.Equal(again, b) {
			t.Fatalf("accepted %x but it encodes as %x", b, again)
		}
	})
}
