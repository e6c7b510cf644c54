package shaper

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestClassIDIsDerivedFromTheSlot(t *testing.T) {
	for slot, want := range map[int]uint32{0: 0x48500001, 9: 0x4850000a, 4095: 0x48501000, maxSlots - 1: 0x4850ffff} {
		if got := ClassID(slot); got != want {
			t.Errorf("ClassID(%d) = %x, want %x", slot, got, want)
		}
	}
	if Root() != 0x48500000 {
		t.Errorf("Root() = %x", Root())
	}
}

func TestPortsValidate(t *testing.T) {
	good := []Ports{
		{Base: 20000, Block: 16, Slots: 10}, {Base: 1024, Block: 1, Slots: 4096},
		{Base: 20000, Block: 8, Slots: 5000}, {Base: 0, Block: 32768, Slots: 2}, {Base: 65535, Block: 1, Slots: 1},
	}
	for _, p := range good {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	bad := map[string]Ports{
		"power of two":  {Base: 20000, Block: 10, Slots: 10},
		"aligned":       {Base: 20008, Block: 16, Slots: 10},
		"no slots":      {Base: 20000, Block: 16, Slots: 0},
		"past 65535":    {Base: 60000, Block: 16, Slots: 400},
		"negative base": {Base: -16, Block: 16, Slots: 1},
		"block 65536":   {Base: 0, Block: 65536, Slots: 1},
	}
	for name, p := range bad {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, p)
		}
	}
	p := Ports{Base: 20000, Block: 16, Slots: 10}
	for _, slot := range []int{-1, 10, 1 << 20} {
		if p.checkSlot(slot) == nil {
			t.Errorf("slot %d accepted for 10 slots", slot)
		}
	}
}

func TestHashBitsSplitTheBlockNumber(t *testing.T) {
	tests := []struct{ block, b, lo, hi int }{
		{1, 0, 8, 8}, {16, 4, 8, 4}, {256, 8, 8, 0}, {4096, 12, 4, 0}, {32768, 15, 1, 0},
	}
	for _, tt := range tests {
		b, lo, hi := Ports{Block: tt.block}.hashBits()
		if b != tt.b || lo != tt.lo || hi != tt.hi {
			t.Errorf("block %d: b, lo, hi = %d, %d, %d; want %d, %d, %d", tt.block, b, lo, hi, tt.b, tt.lo, tt.hi)
		}
	}
}

func TestFiltersOfTheDefaultLayout(t *testing.T) {
	// 20000 = 0x4e20: block number 0x4e2 (16 ports), level-1 bucket 4,
	// level-2 bucket 0xe2 — what `tc filter show dev lo` prints.
	p := Ports{Base: 20000, Block: 16, Slots: 10}
	got := p.leaves(0)
	want := []filter{
		{handle: 0x104e2001, classID: 0x48500001, sel: selector{flags: netlink.TC_U32_TERMINAL}, keys: []key{{mask: 0xfff00000, val: 0x4e200000}}},
		{handle: 0x204e2001, classID: 0x48500001, sel: selector{flags: netlink.TC_U32_TERMINAL}, keys: []key{{mask: 0x0000fff0, val: 0x00004e20}}},
	}
	if !slices.EqualFunc(got, want, filter.equal) {
		t.Errorf("leaves(0) = %+v\nwant %+v", got, want)
	}
	// Slot 9: ports 20144..20159 = 0x4eb0.., block 0x4eb.
	if l := p.leaves(9); l[0].handle != 0x104eb001 || l[1].keys[0].val != 0x4eb0 {
		t.Errorf("leaves(9) = %+v", l)
	}
	var tables, links []string
	for _, f := range p.structure() {
		if f.isTable() {
			tables = append(tables, fmt.Sprintf("%x:/%d", f.handle>>20, f.divisor))
		} else {
			links = append(links, fmt.Sprintf("%s->%x: hash %08x", f, f.link>>20, f.sel.hmask))
		}
	}
	if want := "1:/1 2:/16 3:/16 104:/256 204:/256"; strings.Join(tables, " ") != want {
		t.Errorf("tables = %s, want %s", strings.Join(tables, " "), want)
	}
	wantLinks := []string{
		"u32 800:0:1->1: hash 00000000", "u32 1:0:1->2: hash f0000000", "u32 1:0:2->3: hash 0000f000",
		"u32 2:4:1->104: hash 0ff00000", "u32 3:4:1->204: hash 00000ff0",
	}
	if !slices.Equal(links, wantLinks) {
		t.Errorf("links = %q\nwant %q", links, wantLinks)
	}
}

func TestBlocksSpanningLevelOneBuckets(t *testing.T) {
	// 20000..60007 with blocks of 8 spans level-1 buckets 9..29.
	p := Ports{Base: 20000, Block: 8, Slots: 5000}
	if first, last := p.buckets(); first != 9 || last != 29 {
		t.Errorf("buckets = %d..%d, want 9..29", first, last)
	}
	if n := len(p.structure()); n != 3+2*21+1+2+2*21 {
		t.Errorf("%d tables and links, want %d", n, 3+2*21+1+2+2*21)
	}
}

// packet is an IPv4 packet's first bytes: header (ihl 32-bit words), then
// the TCP (or other) header's ports.
func packet(proto byte, ihl int, fragOff uint16, sport, dport int) []byte {
	b := make([]byte, ihl*4+8)
	b[0] = 0x40 | byte(ihl)
	binary.BigEndian.PutUint16(b[6:], fragOff)
	b[9] = proto
	binary.BigEndian.PutUint16(b[ihl*4:], uint16(sport))
	binary.BigEndian.PutUint16(b[ihl*4+2:], uint16(dport))
	return b
}

// classifier runs the kernel's u32 classifier (net/sched/cls_u32.c,
// u32_classify) over a set of filters.
type classifier struct {
	tables  map[uint32]uint32   // htid -> divisor
	buckets map[uint32][]filter // htid<<20|bucket<<12 -> nodes in node order
}

func newClassifier(fs []filter) *classifier {
	c := &classifier{tables: map[uint32]uint32{rootHTID: 1}, buckets: map[uint32][]filter{}}
	for _, f := range fs {
		if f.isTable() {
			c.tables[f.handle>>20] = f.divisor
			continue
		}
		c.buckets[f.handle&^0xfff] = append(c.buckets[f.handle&^0xfff], f)
	}
	for _, ns := range c.buckets {
		slices.SortFunc(ns, func(a, b filter) int { return int(a.handle&0xfff) - int(b.handle&0xfff) })
	}
	return c
}

// classify returns the class a packet gets (0: none, so HTB sends it
// unshaped) and how many nodes the classifier visited.
func (c *classifier) classify(pkt []byte) (uint32, int) {
	tables, buckets := c.tables, c.buckets
	word := func(at int) (uint32, bool) {
		if at < 0 || at+4 > len(pkt) {
			return 0, false
		}
		return binary.BigEndian.Uint32(pkt[at:]), true
	}
	type frame struct {
		nodes []filter
		i     int
		off   int
	}
	var stack []frame
	nodes, i, off, visits := buckets[rootHTID<<20], 0, 0, 0
	for {
		if i >= len(nodes) { // POP
			if len(stack) == 0 {
				return 0, visits
			}
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			nodes, i, off = f.nodes, f.i, f.off
			if n := nodes[i]; n.sel.flags&netlink.TC_U32_TERMINAL != 0 {
				return n.classID, visits
			}
			i++
			continue
		}
		n := nodes[i]
		visits++
		match := true
		for _, k := range n.keys {
			w, ok := word(off + int(k.off))
			if !ok {
				return 0, visits
			}
			if w&k.mask != k.val {
				match = false
				break
			}
		}
		switch {
		case !match:
			i++
			continue
		case n.link == 0:
			if n.sel.flags&netlink.TC_U32_TERMINAL != 0 {
				return n.classID, visits
			}
			i++
			continue
		}
		stack = append(stack, frame{nodes, i, off})
		htid, bucket := n.link>>20, uint32(0)
		if div := tables[htid]; div > 1 {
			w, ok := word(off + int(n.sel.hoff))
			if !ok {
				return 0, visits
			}
			shift := 0
			if n.sel.hmask != 0 {
				for n.sel.hmask>>shift&1 == 0 {
					shift++
				}
			}
			bucket = (w & n.sel.hmask >> shift) & (div - 1)
		}
		if n.sel.flags&(netlink.TC_U32_VAROFFSET|netlink.TC_U32_OFFSET) != 0 {
			off2 := int(n.sel.off) + 3
			if n.sel.flags&netlink.TC_U32_VAROFFSET != 0 {
				h := binary.BigEndian.Uint16(pkt[off+int(n.sel.offOff):])
				off2 += int((h & n.sel.offMask) >> n.sel.offShift)
			}
			if n.sel.flags&netlink.TC_U32_EAT != 0 {
				off += off2 &^ 3
			}
		}
		nodes, i = buckets[htid<<20|bucket<<12], 0
	}
}

// TestClassificationMatchesExactlyTheLimitedBlocks runs every port of
// several layouts through the classifier: a limited home's block, as
// source or destination port, selects its class; everything else passes
// unclassified; and the cost per packet is the same few nodes for one home
// or thousands.
func TestClassificationMatchesExactlyTheLimitedBlocks(t *testing.T) {
	layouts := []Ports{
		{Base: 20000, Block: 16, Slots: 10},
		{Base: 20000, Block: 8, Slots: 5000},
		{Base: 1024, Block: 1, Slots: 4096},
		{Base: 32768, Block: 256, Slots: 64},
		{Base: 4096, Block: 4096, Slots: 3},
	}
	const other = 555 // a port outside every layout (HAProxy's side, say)
	for _, p := range layouts {
		t.Run(fmt.Sprintf("%d+%dx%d", p.Base, p.Slots, p.Block), func(t *testing.T) {
			fs := p.structure()
			limited := map[int]bool{}
			for slot := 0; slot < p.Slots; slot += 2 { // every other home
				limited[slot] = true
				fs = append(fs, p.leaves(slot)...)
			}
			c := newClassifier(fs)
			maxVisits := 0
			first, last := max(1, p.Base-2*p.Block), min(65535, p.Base+(p.Slots+2)*p.Block)
			for port := first; port <= last; port++ {
				slot := (port - p.Base) / p.Block
				want := uint32(0)
				if port >= p.Base && slot < p.Slots && limited[slot] {
					want = ClassID(slot)
				}
				for _, pkt := range [][]byte{packet(6, 5, 0, port, other), packet(6, 5, 0, other, port)} {
					got, visits := c.classify(pkt)
					if got != want {
						t.Fatalf("port %d (slot %d): class %x, want %x", port, slot, got, want)
					}
					maxVisits = max(maxVisits, visits)
				}
			}
			if maxVisits > 6 {
				t.Errorf("a packet visited %d u32 nodes, want at most 6 whatever the number of homes", maxVisits)
			}
		})
	}
}

func TestOnlyFirstFragmentsOfTCPAreClassified(t *testing.T) {
	p := Ports{Base: 20000, Block: 16, Slots: 10}
	c := newClassifier(append(p.structure(), p.leaves(3)...))
	port := 20000 + 3*16 + 5
	tests := map[string]struct {
		pkt  []byte
		want uint32
	}{
		"tcp":                        {packet(6, 5, 0, port, 40000), ClassID(3)},
		"tcp with IP options":        {packet(6, 7, 0, 40000, port), ClassID(3)},
		"tcp, first of fragments":    {packet(6, 5, 0x2000, port, 40000), ClassID(3)},
		"tcp, later fragment":        {packet(6, 5, 0x0010, port, 40000), 0},
		"udp on a tunnel port":       {packet(17, 5, 0, port, 40000), 0},
		"tcp on an unlimited block":  {packet(6, 5, 0, port+16, 40000), 0},
		"tcp between two home ports": {packet(6, 5, 0, 20000+16*5, port), ClassID(3)},
	}
	for name, tt := range tests {
		if got, _ := c.classify(tt.pkt); got != tt.want {
			t.Errorf("%s: class %x, want %x", name, got, tt.want)
		}
	}
}
