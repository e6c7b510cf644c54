package homes

import (
	"testing"

	"homeport.dev/proto"
)

func TestLayoutBlocks(t *testing.T) {
	l := DefaultLayout
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		slot        int
		tunnel, tcp proto.PortRange
	}{
		{0, proto.PortRange{First: 20000, Last: 20015}, proto.PortRange{First: 10000, Last: 10009}},
		{1, proto.PortRange{First: 20016, Last: 20031}, proto.PortRange{First: 10010, Last: 10019}},
		{9, proto.PortRange{First: 20144, Last: 20159}, proto.PortRange{First: 10090, Last: 10099}},
	}
	for _, tt := range tests {
		if got := l.TunnelPorts(tt.slot); got != tt.tunnel {
			t.Errorf("TunnelPorts(%d) = %v, want %v", tt.slot, got, tt.tunnel)
		}
		if got := l.TCPPorts(tt.slot); got != tt.tcp {
			t.Errorf("TCPPorts(%d) = %v, want %v", tt.slot, got, tt.tcp)
		}
	}
	if got := l.TunnelRange(); got != (proto.PortRange{First: 20000, Last: 20159}) {
		t.Errorf("TunnelRange = %v", got)
	}
}

func TestLayoutValidate(t *testing.T) {
	bad := map[string]Layout{
		"no slots":             {Slots: 0, TunnelBase: 20000, TunnelBlock: 16, TCPBase: 10000, TCPBlock: 10},
		"block not power of 2": {Slots: 10, TunnelBase: 20000, TunnelBlock: 10, TCPBase: 10000, TCPBlock: 10},
		"unaligned base":       {Slots: 10, TunnelBase: 20001, TunnelBlock: 16, TCPBase: 10000, TCPBlock: 10},
		"past 65535":           {Slots: 4096, TunnelBase: 60000, TunnelBlock: 16, TCPBase: 10000, TCPBlock: 0},
		"overlapping ranges":   {Slots: 10, TunnelBase: 10000, TunnelBlock: 16, TCPBase: 10000, TCPBlock: 10},
	}
	for name, l := range bad {
		if err := l.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, l)
		}
	}
}

func TestLowestFree(t *testing.T) {
	tests := []struct {
		used        []int
		first, last int
		want        int
		ok          bool
	}{
		{nil, 20000, 20015, 20000, true},
		{[]int{20000, 20001, 20003}, 20000, 20015, 20002, true},
		{[]int{20003, 20000}, 20000, 20003, 20001, true},
		{[]int{0, 1, 2}, 0, 2, 0, false},
		{[]int{5}, 5, 5, 0, false},
	}
	for _, tt := range tests {
		got, ok := LowestFree(tt.used, tt.first, tt.last)
		if got != tt.want || ok != tt.ok {
			t.Errorf("LowestFree(%v, %d, %d) = %d, %v; want %d, %v", tt.used, tt.first, tt.last, got, ok, tt.want, tt.ok)
		}
	}
}
