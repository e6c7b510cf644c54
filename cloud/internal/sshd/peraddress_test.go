package sshd_test

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/sshd"
)

// TestHomesBehindOneAddressAllStayConnected: the per-address limit counts
// connections still logging in, so more homes than the limit can stay
// connected from one address (a carrier-grade NAT), while connections that
// never log in are still held to it.
func TestHomesBehindOneAddressAllStayConnected(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{Slots: 4})
	var srv *sshd.Server
	addr := endpoint(t, c, sshd.Options{MaxConnsPerIP: 2, HandshakeTimeout: 5 * time.Second}, func(s *sshd.Server) { srv = s })
	var homes []cloudtest.Home
	for i, user := range []string{"alice", "bob", "carol"} { // 3 homes, limit 2
		h := c.NewHome(t, user)
		homes = append(homes, h)
		cl, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: h.Slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(h.Signer)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("home %d of 3 from one address (limit 2, logged-in ones do not count): %v", i+1, err)
		}
		defer cl.Close()
	}
	// The client is logged in when it reads the server's success; the
	// server stops counting the connection against the address just
	// after it sent it.
	eventually(t, 10*time.Second, "the 3 homes online", func() bool {
		st := srv.Stats()
		for _, h := range homes {
			if !st[h.ID].Online {
				return false
			}
		}
		return true
	})
	banner := func(c net.Conn) error {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := io.ReadFull(c, make([]byte, 8))
		return err
	}
	for i := 0; i < 2; i++ { // two that say nothing hold the address's budget
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := banner(conn); err != nil {
			t.Fatalf("unauthenticated connection %d within the limit got no banner: %v", i+1, err)
		}
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if err := banner(extra); err == nil {
		t.Errorf("a 3rd unauthenticated connection got a banner; the limit is 2")
	}
}
