package check

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/proto"
	"homeport.dev/proto/testnet"
)

func TestUnreservedCountsTheOverlapLeftToTheKernel(t *testing.T) {
	eph := proto.PortRange{First: 32768, Last: 60999}
	for _, tc := range []struct {
		r        proto.PortRange
		reserved []proto.PortRange
		n        int
	}{
		{proto.PortRange{First: 20000, Last: 30000}, nil, 0},
		{proto.PortRange{First: 30000, Last: 32768}, nil, 1},
		{proto.PortRange{First: 32000, Last: 33767}, nil, 1000},
		{proto.PortRange{First: 32000, Last: 33767}, ParseReserved("32768-33000,33500"), 766},
		{proto.PortRange{First: 40000, Last: 40099}, ParseReserved("40000-40099\n"), 0},
		{proto.PortRange{First: 60000, Last: 65000}, nil, 1000},
	} {
		if n, _, _ := Unreserved(tc.r, eph, tc.reserved); n != tc.n {
			t.Errorf("Unreserved(%s, reserved %v) = %d, want %d", tc.r, tc.reserved, n, tc.n)
		}
	}
}

// TestPortsWarnsOfTheEphemeralRangeAndForeignListeners: a tunnel range in
// the kernel's ephemeral range is reported with the sysctl that reserves
// it, and a port of it held by another process (a real one, python3) with
// its name and pid.
func TestPortsWarnsOfTheEphemeralRangeAndForeignListeners(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed to hold a port from another process")
	}
	tun, tcp := testnet.CloudPorts(t, 1, 16, 2)
	cfg, err := config.Parse([]string{"--data", t.TempDir(), "--haproxy", "off", "--home-slots", "1", "--tunnel-block", "16", "--tcp-block", "2",
		"--tunnel-port-base", strconv.Itoa(tun.First), "--tcp-ports", tcp.String()})
	if err != nil {
		t.Fatal(err)
	}
	tunnels := cfg.Layout.TunnelRange()
	held := tunnels.First + 3
	// An earlier test of any package may have served on this port: its
	// connections linger in TIME_WAIT, as one does here. python3 binds as
	// servers do (SO_REUSEADDR), or the kernel refuses it the port.
	leaveTimeWait(t, held)
	cmd := exec.Command("python3", "-c", fmt.Sprintf("import socket,sys\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('127.0.0.1',%d))\ns.listen()\nprint('ready',flush=True)\nsys.stdin.read()", held))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr testnet.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		cmd.Wait()
		t.Fatalf("python3 did not listen on %d: %q %s", held, line, stderr.String())
	}

	h, err := ReadHost(tunnels)
	if err != nil {
		t.Fatal(err)
	}
	if who := h.Listeners[held]; !strings.Contains(who, fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Fatalf("listeners = %v, want port %d held by python3 pid %d", h.Listeners, held, cmd.Process.Pid)
	}
	h.Ephemeral = proto.PortRange{First: tunnels.First + 8, Last: 60999} // as if the kernel's range began inside
	h.Reserved = nil
	got := Ports(cfg, h)
	text := fmt.Sprint(got)
	for _, want := range []string{
		fmt.Sprintf("tunnel ports %s overlap the kernel's ephemeral ports", tunnels),
		fmt.Sprintf("net.ipv4.ip_local_reserved_ports=%d-%d", tunnels.First+8, tunnels.Last),
		fmt.Sprintf("tunnel ports held by another process: %d (python3, pid %d)", held, cmd.Process.Pid),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("findings lack %q:\n%s", want, text)
		}
	}
	h.Ephemeral = proto.PortRange{First: 32768, Last: 60999}
	h.Reserved = nil
	h.Listeners = nil
	if got := Ports(cfg, h); len(got) != 0 && tcp.Last < h.Ephemeral.First {
		t.Errorf("ranges below the ephemeral one and free = %+v, want no finding", got)
	}
}

// leaveTimeWait serves one connection on port and closes it from the
// server's side first, which leaves the port's end in TIME_WAIT for a
// minute, as a test that served on the port before would.
func leaveTimeWait(t *testing.T, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.Read(make([]byte, 1)) // the server's FIN has arrived: the client's close completes the handshake
}
