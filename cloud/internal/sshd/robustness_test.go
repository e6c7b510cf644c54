package sshd_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/sshd"
	"homeport.dev/proto"
)

// TestGarbageAndSilenceDoNotHurtTheEndpoint sends random bytes, a bogus SSH
// banner and a silent connection; the endpoint drops them (the silent one at
// its handshake deadline) and keeps serving real homes.
func TestGarbageAndSilenceDoNotHurtTheEndpoint(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{})
	h := c.NewHome(t, "alice")
	signer, _ := cloudtest.NewKey(t)
	addr := endpoint(t, c, sshd.Options{HostKey: signer, HandshakeTimeout: 300 * time.Millisecond}, nil)

	for i := 0; i < 20; i++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		junk := make([]byte, 4096)
		rand.Read(junk)
		if i%2 == 0 {
			copy(junk, "SSH-2.0-evil\r\n")
		}
		conn.Write(junk)
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.Copy(io.Discard, conn) // returns once the server hangs up
		conn.Close()
	}
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, silent)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a silent client was kept %v; the handshake deadline is 300ms", took)
	}
	// A real home still gets in.
	cl, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: h.Slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(h.Signer)},
		HostKeyCallback: ssh.FixedHostKey(signer.PublicKey()), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("a real home after the garbage: %v", err)
	}
	cl.Close()
}

// TestConnectionLimits: connections beyond the per-address limit, and
// logins in progress beyond the endpoint's limit (what an attacker with
// many addresses would exhaust), are hung up on before the banner.
func TestConnectionLimits(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{})
	for _, tc := range []struct {
		name string
		opts sshd.Options
	}{
		{"per address", sshd.Options{MaxConnsPerIP: 3}},
		{"logins in progress", sshd.Options{MaxConnsPerIP: 100, MaxHandshakes: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.HandshakeTimeout = 5 * time.Second
			addr := endpoint(t, c, o, nil)
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			readBanner := func(c net.Conn) error {
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				b := make([]byte, 8)
				_, err := io.ReadFull(c, b)
				return err
			}
			for i := 0; i < 3; i++ {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, conn)
				if err := readBanner(conn); err != nil {
					t.Fatalf("connection %d within the limit got no banner: %v", i+1, err)
				}
			}
			extra, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer extra.Close()
			if err := readBanner(extra); err == nil {
				t.Errorf("a 4th connection got a banner; the limit is 3")
			}
			held[0].Close()
			eventually(t, 5*time.Second, "a banner once a connection is freed", func() bool {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					return false
				}
				held = append(held, conn)
				return readBanner(conn) == nil
			})
		})
	}
}

func TestKeyRotationClosesTheLiveConnection(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{})
	h := c.NewHome(t, "alice")
	cl, err := ssh.Dial("tcp", c.SSHAddr, &ssh.ClientConfig{User: h.Slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(h.Signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// A limit change keeps the connection; a new key ends it.
	limit := int64(5000)
	if _, err := c.App.Homes.Patch(context.Background(), h.Home, proto.PatchHomeRequest{BandwidthLimitKbps: proto.Some(limit)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		t.Fatalf("a limit change closed the connection: %v", err)
	}
	_, pub := cloudtest.NewKey(t)
	start := time.Now()
	if _, err := c.App.Homes.Patch(context.Background(), h.Home, proto.PatchHomeRequest{PublicKey: &pub}); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- cl.Wait() }()
	select {
	case <-closed:
	case <-time.After(time.Second):
		t.Fatalf("connection with the old key still open %v after rotation", time.Since(start))
	}
}

// TestKeyRotatedDuringLoginDoesNotSurvive: a connection that authenticated
// with the old key while the key was being replaced must not outlive the
// rotation. The endpoint used to re-read the home after the handshake and
// adopt the new key's fingerprint, so such a session stayed up.
func TestKeyRotatedDuringLoginDoesNotSurvive(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{})
	h := c.NewHome(t, "alice")
	_, pub := cloudtest.NewKey(t)
	var srv *sshd.Server
	addr := endpoint(t, c, sshd.Options{}, func(s *sshd.Server) {
		srv = s
		sshd.SetAfterAuth(srv, func() {
			if _, err := c.App.Homes.Patch(context.Background(), h.Home, proto.PatchHomeRequest{PublicKey: &pub}); err != nil {
				t.Error(err)
			}
			// The rotation's own revalidation runs now, before the session
			// exists: it finds nothing to close.
			srv.Revalidate(context.Background(), h.ID)
		})
	})
	cl, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: h.Slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(h.Signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	if err != nil {
		return // refused outright: fine too
	}
	defer cl.Close()
	closed := make(chan error, 1)
	go func() { closed <- cl.Wait() }()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("a connection made with the old key is still open after the rotation")
	}
	eventually(t, 2*time.Second, "the endpoint forgets the closed connection", func() bool { return !srv.Connected(h.ID) })
}

// TestOlderLoginDoesNotTakeOverANewerOne: a connection that authenticated
// first but is registered last (a slow database lookup) must not take the
// home's newer connection over; it used to, closing the connection the home
// actually uses.
func TestOlderLoginDoesNotTakeOverANewerOne(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{})
	h := c.NewHome(t, "alice")
	newerUp := make(chan struct{})
	var first atomic.Bool
	var srv *sshd.Server
	addr := endpoint(t, c, sshd.Options{}, func(s *sshd.Server) {
		srv = s
		sshd.SetAfterAuth(srv, func() {
			if first.CompareAndSwap(false, true) {
				<-newerUp // the older login waits here while the newer one registers
			}
		})
	})
	dial := func() (*ssh.Client, error) {
		return ssh.Dial("tcp", addr, &ssh.ClientConfig{User: h.Slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(h.Signer)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	}
	older := make(chan *ssh.Client, 1)
	go func() {
		cl, err := dial()
		if err != nil {
			t.Error(err)
		}
		older <- cl
	}()
	eventually(t, 5*time.Second, "the older login authenticated", first.Load)
	newer, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer newer.Close()
	eventually(t, 5*time.Second, "the newer login registered", func() bool { return srv.Connected(h.ID) })
	close(newerUp)
	if cl := <-older; cl != nil {
		defer cl.Close()
		closed := make(chan error, 1)
		go func() { closed <- cl.Wait() }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Error("the older connection was kept")
		}
	}
	if _, _, err := newer.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		t.Fatalf("the newer connection was closed by the older login: %v", err)
	}
}

// endpoint runs an SSH endpoint of c's homes with options o until the test
// ends; prepare, if set, sees the server before it serves. It returns the
// endpoint's address.
func endpoint(t testing.TB, c *cloudtest.Cloud, o sshd.Options, prepare func(*sshd.Server)) string {
	t.Helper()
	if o.HostKey == nil {
		o.HostKey, _ = cloudtest.NewKey(t)
	}
	o.Homes = c.App.Homes
	o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := sshd.New(o)
	if prepare != nil {
		prepare(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}
