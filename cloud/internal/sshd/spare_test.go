package sshd_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/budget"
	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/sshd"
	"homeport.dev/cloud/internal/store"
)

// gatedHome is a home that answers the cloud's channel opens on its tunnel
// port only while its gate lets it: each accepted channel echoes what it
// receives. It counts the channels it accepted and those that ended
// without a byte (spares the cloud withdrew).
type gatedHome struct {
	accepted  atomic.Int64
	withdrawn atomic.Int64
	gate      chan struct{} // one token per channel open to answer
	ln        net.Listener
}

func startGatedHome(t testing.TB, addr string, h cloudtest.Home, version string) *gatedHome {
	t.Helper()
	cl, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: h.Slug, ClientVersion: version, Auth: []ssh.AuthMethod{ssh.PublicKeys(h.Signer)},
		HostKeyCallback: func(string, net.Addr, ssh.PublicKey) error { return nil }, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	ln, err := cl.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", h.Tunnel.First))
	if err != nil {
		t.Fatalf("forward: %v", err)
	}
	g := &gatedHome{gate: make(chan struct{}, 1000), ln: ln}
	go func() {
		for range g.gate {
			c, err := ln.Accept() // confirms the open
			if err != nil {
				return
			}
			g.accepted.Add(1)
			go func() {
				defer c.Close()
				if n, _ := io.Copy(c, c); n == 0 {
					g.withdrawn.Add(1)
				}
			}()
		}
	}()
	return g
}

// answer lets the home answer n more channel opens.
func (g *gatedHome) answer(n int) {
	for range n {
		g.gate <- struct{}{}
	}
}

// echoes reports whether a visitor of port gets its bytes back within d.
func echoes(port int, d time.Duration) error {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), d)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("hello")); err != nil {
		return err
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "hello" {
		return fmt.Errorf("got %q", buf)
	}
	return nil
}

func spareEndpoint(t testing.TB, c *cloudtest.Cloud, public bool, ledger *budget.Ledger) (string, *sshd.Server) {
	var srv *sshd.Server
	addr := endpoint(t, c, sshd.Options{SpareChannels: 2, Budget: ledger,
		PublicPort: func(context.Context, store.Home, int) bool { return public }}, func(s *sshd.Server) { srv = s })
	return addr, srv
}

// TestVisitorsUseSpareChannels: after a first visitor, a public tunnel port
// holds two channels opened ahead of the next visitors, who are served
// through them even while the home answers no channel open at all (a
// visitor used to wait for the open's round trip to the home: on a real
// home behind NAT, a WAN round trip per new connection). A private port
// gets none, nor does a home that is not the agent (plain ssh -R): both
// dial the local service as soon as a channel opens.
func TestVisitorsUseSpareChannels(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t, cloudtest.Options{})
	t.Run("public", func(t *testing.T) {
		h := c.NewHome(t, "alice")
		addr, _ := spareEndpoint(t, c, true, nil)
		home := startGatedHome(t, addr, h, agentVersion)
		home.answer(3) // the first visitor's channel and the two spares
		if err := echoes(h.Tunnel.First, 10*time.Second); err != nil {
			t.Fatalf("first visitor: %v", err)
		}
		eventually(t, 10*time.Second, "the home accepted the first visitor's channel and two spares", func() bool {
			return home.accepted.Load() == 3
		})
		// The home answers nothing more: the next two visitors get the
		// spares, the third waits for an open nobody answers.
		for i := range 2 {
			if err := echoes(h.Tunnel.First, 5*time.Second); err != nil {
				t.Fatalf("visitor %d with a spare: %v", i+2, err)
			}
		}
		if err := echoes(h.Tunnel.First, 300*time.Millisecond); err == nil {
			t.Fatal("a visitor was served with no spare left and no open answered")
		}
		home.answer(100)
	})
	for _, tc := range []struct {
		name, user, version string
		public              bool
	}{
		{"private", "bob", agentVersion, false},
		{"plain ssh", "dave", "SSH-2.0-OpenSSH_9.2p1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := c.NewHome(t, tc.user)
			addr, _ := spareEndpoint(t, c, tc.public, nil)
			home := startGatedHome(t, addr, h, tc.version)
			home.answer(100)
			for i := range 5 {
				if err := echoes(h.Tunnel.First, 10*time.Second); err != nil {
					t.Fatalf("visitor %d: %v", i+1, err)
				}
			}
			if n := home.accepted.Load(); n != 5 {
				t.Errorf("the home accepted %d channels for 5 visitors: spares were opened", n)
			}
		})
	}
}

const agentVersion = "SSH-2.0-homeport-home-2" // tunnel.ClientVersion

// TestSpareChannelsAreWithdrawn: spares are closed (without a byte sent) a
// little after the port's last visitor and when the home cancels the
// forward, and the channel budget they held is free again.
func TestSpareChannelsAreWithdrawn(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t, cloudtest.Options{})
	ledger := budget.New(budget.Limits{})
	h := c.NewHome(t, "carol")
	addr, srv := spareEndpoint(t, c, true, ledger)
	home := startGatedHome(t, addr, h, agentVersion)
	home.answer(100)
	if err := echoes(h.Tunnel.First, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "two spares open", func() bool {
		ch, _ := ledger.Usage(h.ID)
		return ch == 2 && sshd.SpareChannels(srv) == 2
	})
	// A visitor takes one: the gauge counts the idle ones only.
	if err := echoes(h.Tunnel.First, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "two spares again after a visitor took one", func() bool {
		ch, _ := ledger.Usage(h.ID)
		return ch == 2 && sshd.SpareChannels(srv) == 2
	})
	eventually(t, 10*time.Second, "the idle spares closed", func() bool {
		ch, _ := ledger.Usage(h.ID)
		return ch == 0 && home.withdrawn.Load() == 2 && sshd.SpareChannels(srv) == 0
	})

	// Busy again, then the forward is cancelled: its spares go with it.
	if err := echoes(h.Tunnel.First, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "two spares open again", func() bool {
		ch, _ := ledger.Usage(h.ID)
		return ch == 2
	})
	home.ln.Close() // cancel-tcpip-forward
	eventually(t, time.Second, "the cancelled forward's spares closed", func() bool {
		ch, _ := ledger.Usage(h.ID)
		return ch == 0 && sshd.SpareChannels(srv) == 0
	})
}
