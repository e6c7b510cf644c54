package check

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/proto"
)

// Host is what the ports check reads of the machine: the kernel's ephemeral
// range, the ports reserved from it, and who listens where.
type Host struct {
	Ephemeral proto.PortRange   // net.ipv4.ip_local_port_range
	Reserved  []proto.PortRange // net.ipv4.ip_local_reserved_ports
	// Listeners are the TCP ports listened on by processes other than the
	// cloud and its HAProxy, with who holds each ("" when this user cannot
	// see).
	Listeners map[int]string
}

// ReadHost reads the machine's ports from /proc; it looks for listeners in
// the given ranges only.
func ReadHost(ranges ...proto.PortRange) (Host, error) {
	var h Host
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return h, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return h, fmt.Errorf("ip_local_port_range: %q", b)
	}
	h.Ephemeral.First, _ = strconv.Atoi(f[0])
	h.Ephemeral.Last, _ = strconv.Atoi(f[1])
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_reserved_ports"); err == nil {
		h.Reserved = ParseReserved(string(b))
	}
	h.Listeners = foreignListeners(ranges)
	return h, nil
}

// ParseReserved reads ip_local_reserved_ports ("8080,20000-20999").
func ParseReserved(s string) []proto.PortRange {
	var out []proto.PortRange
	for part := range strings.SplitSeq(strings.TrimSpace(s), ",") {
		if part == "" {
			continue
		}
		a, b, found := strings.Cut(part, "-")
		if !found {
			b = a
		}
		first, err1 := strconv.Atoi(a)
		last, err2 := strconv.Atoi(b)
		if err1 == nil && err2 == nil {
			out = append(out, proto.PortRange{First: first, Last: last})
		}
	}
	return out
}

// Ports reports the conflicts of the cloud's tunnel and public TCP ports
// with the host h: ports of the kernel's ephemeral range not reserved from
// it (any process's outgoing connection may take one, and the home whose
// port it is cannot forward it until it is free), and ports another process
// listens on (that home's forward is refused).
func Ports(cfg config.Config, h Host) []Finding {
	var out []Finding
	ranges := []struct {
		name, flag string
		r          proto.PortRange
	}{
		{"tunnel ports", "--tunnel-port-base", cfg.Layout.TunnelRange()},
		{"public TCP ports", "--tcp-ports", cfg.TCPPorts},
	}
	for _, rg := range ranges {
		if rg.r.Size() <= 0 {
			continue
		}
		if n, lo, hi := Unreserved(rg.r, h.Ephemeral, h.Reserved); n > 0 {
			out = append(out, Finding{
				What: fmt.Sprintf("%s %s overlap the kernel's ephemeral ports %s (net.ipv4.ip_local_port_range) in %d ports not reserved: an outgoing connection of any process may take one, and the home whose port it is cannot use it meanwhile", rg.name, rg.r, h.Ephemeral, n),
				Fix: fmt.Sprintf("move them out of %s (%s), or reserve them: sysctl -w net.ipv4.ip_local_reserved_ports=%d-%d, and the same line in /etc/sysctl.d/ to keep it",
					h.Ephemeral, rg.flag, lo, hi),
			})
		}
		var held []string
		for p := rg.r.First; p <= rg.r.Last; p++ {
			if who, ok := h.Listeners[p]; ok {
				if who == "" {
					who = "a process this user cannot inspect: the running cloud's own forward if it runs as another user"
				}
				held = append(held, fmt.Sprintf("%d (%s)", p, who))
			}
		}
		if len(held) > 0 {
			if len(held) > 10 {
				held = append(held[:10], fmt.Sprintf("and %d more", len(held)-10))
			}
			out = append(out, Finding{
				What: fmt.Sprintf("%s held by another process: %s; the home whose port it is cannot forward it (its mappings show port_in_use)", rg.name, strings.Join(held, ", ")),
				Fix:  fmt.Sprintf("stop that process or move it, or move the cloud's range (%s)", rg.flag),
			})
		}
	}
	return out
}

// Unreserved counts the ports of r inside the ephemeral range and not
// reserved from it, and gives the span of the overlap.
func Unreserved(r, ephemeral proto.PortRange, reserved []proto.PortRange) (n, lo, hi int) {
	lo, hi = max(r.First, ephemeral.First), min(r.Last, ephemeral.Last)
	for p := lo; p <= hi; p++ {
		if !slices.ContainsFunc(reserved, func(rr proto.PortRange) bool { return rr.Contains(p) }) {
			n++
		}
	}
	return n, lo, hi
}

// foreignListeners lists the TCP ports in LISTEN state (IPv4 and IPv6) held
// by processes other than this program and HAProxy, with each holder's
// name and pid when this user may see it.
func foreignListeners(ranges []proto.PortRange) map[int]string {
	inodes := map[string]int{} // socket inode -> port
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		listeningInodes(f, inodes)
	}
	maps.DeleteFunc(inodes, func(_ string, port int) bool {
		return !slices.ContainsFunc(ranges, func(r proto.PortRange) bool { return r.Contains(port) })
	})
	if len(inodes) == 0 {
		return nil
	}
	owner := socketOwners(inodes)
	self, _ := os.Readlink("/proc/self/exe")
	out := map[int]string{}
	for inode, port := range inodes {
		o, known := owner[inode]
		switch {
		case !known:
			if _, seen := out[port]; !seen {
				out[port] = ""
			}
		case o.exe == self || o.comm == filepath.Base(self) || o.comm == "haproxy":
			// the cloud's own listeners (a running `cloud serve`) and its HAProxy
		default:
			out[port] = fmt.Sprintf("%s, pid %d", o.comm, o.pid)
		}
	}
	return out
}

// listeningInodes adds the LISTEN sockets of a /proc/net/tcp file.
func listeningInodes(file string, into map[string]int) {
	f, err := os.Open(file)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if ok && err == nil {
			into[fields[9]] = int(port)
		}
	}
}

type process struct {
	pid       int
	comm, exe string
}

// socketOwners finds which process holds each socket inode, among the
// processes whose descriptors this user may read.
func socketOwners(inodes map[string]int) map[string]process {
	out := map[string]process{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		fds, err := os.ReadDir(filepath.Join(d, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(d, "fd", fd.Name()))
			inode, ok := strings.CutPrefix(link, "socket:[")
			if err != nil || !ok {
				continue
			}
			inode = strings.TrimSuffix(inode, "]")
			if _, listening := inodes[inode]; !listening {
				continue
			}
			pid, _ := strconv.Atoi(filepath.Base(d))
			comm, _ := os.ReadFile(filepath.Join(d, "comm"))
			exe, _ := os.Readlink(filepath.Join(d, "exe"))
			out[inode] = process{pid: pid, comm: strings.TrimSpace(string(comm)), exe: exe}
		}
	}
	return out
}
