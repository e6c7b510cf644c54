package sshd_test

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/proto"
)

// loginWatching logs h in and returns the connection with the global
// requests the cloud sends it (which ssh.NewClient would refuse unseen).
func loginWatching(t *testing.T, addr string, h cloudtest.Home) (ssh.Conn, <-chan *ssh.Request) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn, chans, reqs, err := ssh.NewClientConn(raw, addr, &ssh.ClientConfig{User: h.Slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(h.Signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		for nc := range chans {
			nc.Reject(ssh.Prohibited, "test")
		}
	}()
	return conn, reqs
}

// TestReplacedConnectionIsToldWhoReplacedIt: when a second login of a home
// takes its tunnel over, the first connection is told, before it is
// closed, the new connection's address and login time, so that the agent
// behind it can say where its profile runs now and stop reconnecting.
func TestReplacedConnectionIsToldWhoReplacedIt(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{})
	h := c.NewHome(t, "alice")
	first, notices := loginWatching(t, c.SSHAddr, h)
	before := time.Now()
	second, secondReqs := loginWatching(t, c.SSHAddr, h)

	var got proto.Replaced
	timeout := time.After(10 * time.Second)
	for got.By == "" {
		select {
		case req, open := <-notices:
			if !open {
				t.Fatal("the replaced connection was closed without being told why")
			}
			if req.Type != proto.ReplacedRequest {
				req.Reply(false, nil) // keepalives
				continue
			}
			if err := json.Unmarshal(req.Payload, &got); err != nil {
				t.Fatalf("notice payload %q: %v", req.Payload, err)
			}
			req.Reply(true, nil)
		case <-timeout:
			t.Fatal("no replaced notice within 10 s")
		}
	}
	if got.By != second.LocalAddr().String() {
		t.Errorf("notice names %q, want the new connection's address %s", got.By, second.LocalAddr())
	}
	if got.Since.Before(before.Add(-time.Second)) || got.Since.After(time.Now().Add(time.Second)) {
		t.Errorf("notice says the new connection logged in at %s, want between %s and now", got.Since, before)
	}
	closed := make(chan error, 1)
	go func() { closed <- first.Wait() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced connection stayed open after acknowledging the notice")
	}
	// The new connection is never told about itself.
	if _, _, err := second.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		t.Fatalf("the new connection was closed: %v", err)
	}
	select {
	case req := <-secondReqs:
		if req != nil && req.Type == proto.ReplacedRequest {
			t.Errorf("the new connection got a replaced notice")
		}
	default:
	}
}
