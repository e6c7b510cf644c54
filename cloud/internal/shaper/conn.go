package shaper

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// conn is one use of netlink in a network namespace: the netlink package's
// handle, plus a socket of its own for the one dump that package does not
// return (u32 hash tables, which carry no selector).
type conn struct {
	*netlink.Handle
	raw *nl.SocketHandle
}

// openConn opens netlink in ns (netns.None(): the process's own), with
// every request bounded by timeout.
func openConn(ns netns.NsHandle, timeout time.Duration) (*conn, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	sock, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	c := &conn{Handle: h, raw: &nl.SocketHandle{Socket: sock}}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	err = h.SetSocketTimeout(timeout)
	if err == nil {
		err = sock.SetSendTimeout(&tv)
	}
	if err == nil {
		err = sock.SetReceiveTimeout(&tv)
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return c, nil
}

func (c *conn) close() {
	c.Handle.Close()
	c.raw.Close()
}

// tables lists the u32 hash tables under homeport's root qdisc on link.
func (c *conn) tables(link netlink.Link) ([]filter, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETTFILTER, unix.NLM_F_DUMP)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: c.raw}
	req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(link.Attrs().Index), Parent: Root()})
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWTFILTER)
	if err != nil {
		return nil, err
	}
	var out []filter
	for _, m := range msgs {
		msg := nl.DeserializeTcMsg(m)
		prio, proto := netlink.MajorMinor(msg.Info)
		if prio != filterPrio || nl.Swap16(proto) != protocolIP || msg.Handle == 0 {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[msg.Len():])
		if err != nil {
			return nil, err
		}
		var kind string
		var divisor uint32
		for _, a := range attrs {
			switch a.Attr.Type {
			case nl.TCA_KIND:
				kind = string(bytes.TrimRight(a.Value, "\x00"))
			case nl.TCA_OPTIONS:
				opts, err := nl.ParseRouteAttr(a.Value)
				if err != nil {
					return nil, err
				}
				for _, o := range opts {
					if o.Attr.Type == nl.TCA_U32_DIVISOR && len(o.Value) == 4 {
						divisor = binary.NativeEndian.Uint32(o.Value)
					}
				}
			}
		}
		if kind == "u32" && divisor > 0 {
			out = append(out, filter{handle: msg.Handle, divisor: divisor})
		}
	}
	return out, nil
}
