// Package homes owns home slots: the port blocks each slot fixes, the SSH
// keys that identify homes, and claiming, changing and releasing them.
package homes

import (
	"fmt"
	"math/bits"

	"homeport.dev/proto"
)

// Layout fixes how many home slots exist and which ports each slot owns.
// Slot i owns tunnel ports TunnelBase+i*TunnelBlock ... and public TCP ports
// TCPBase+i*TCPBlock ....
type Layout struct {
	Slots       int
	TunnelBase  int
	TunnelBlock int
	TCPBase     int
	TCPBlock    int
}

// DefaultLayout is 10 homes, 16 tunnel ports each from 20000, and 10 public
// TCP ports each from 10000.
var DefaultLayout = Layout{Slots: 10, TunnelBase: 20000, TunnelBlock: 16, TCPBase: 10000, TCPBlock: 10}

// Validate checks that every block fits in the port space and that tunnel
// blocks are aligned powers of two, so a u32 filter can match a whole block
// with one value/mask pair (the bandwidth shaper relies on it).
func (l Layout) Validate() error {
	switch {
	case l.Slots < 1 || l.Slots > 0xffff: // a bandwidth class each (shaper); the port space bounds them too
		return fmt.Errorf("home slots must be 1..65535, got %d", l.Slots)
	case l.TunnelBlock < 1 || bits.OnesCount(uint(l.TunnelBlock)) != 1:
		return fmt.Errorf("tunnel block size must be a power of two, got %d", l.TunnelBlock)
	case l.TunnelBase%l.TunnelBlock != 0:
		return fmt.Errorf("tunnel port base %d must be a multiple of the block size %d", l.TunnelBase, l.TunnelBlock)
	case l.TCPBlock < 0:
		return fmt.Errorf("public TCP block size must not be negative, got %d", l.TCPBlock)
	}
	if err := l.TunnelRange().Validate(); err != nil {
		return fmt.Errorf("tunnel ports: %w", err)
	}
	if l.TCPBlock > 0 {
		if err := l.TCPRange().Validate(); err != nil {
			return fmt.Errorf("public TCP ports: %w", err)
		}
		if t, p := l.TunnelRange(), l.TCPRange(); t.First <= p.Last && p.First <= t.Last {
			return fmt.Errorf("tunnel ports %s overlap public TCP ports %s", t, p)
		}
	}
	return nil
}

// TunnelRange is every slot's tunnel ports together.
func (l Layout) TunnelRange() proto.PortRange {
	return proto.PortRange{First: l.TunnelBase, Last: l.TunnelBase + l.Slots*l.TunnelBlock - 1}
}

// TCPRange is every slot's public TCP ports together.
func (l Layout) TCPRange() proto.PortRange {
	return proto.PortRange{First: l.TCPBase, Last: l.TCPBase + l.Slots*l.TCPBlock - 1}
}

// TunnelPorts is the tunnel block of slot.
func (l Layout) TunnelPorts(slot int) proto.PortRange {
	first := l.TunnelBase + slot*l.TunnelBlock
	return proto.PortRange{First: first, Last: first + l.TunnelBlock - 1}
}

// TCPPorts is the public TCP block of slot (empty when TCPBlock is 0).
func (l Layout) TCPPorts(slot int) proto.PortRange {
	first := l.TCPBase + slot*l.TCPBlock
	return proto.PortRange{First: first, Last: first + l.TCPBlock - 1}
}

// LowestFree returns the lowest value in [first, last] that is not in used.
func LowestFree(used []int, first, last int) (int, bool) {
	taken := make(map[int]bool, len(used))
	for _, u := range used {
		taken[u] = true
	}
	for v := first; v <= last; v++ {
		if !taken[v] {
			return v, true
		}
	}
	return 0, false
}
