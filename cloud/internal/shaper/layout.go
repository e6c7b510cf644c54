package shaper

import (
	"fmt"
	"math/bits"
	"slices"

	"github.com/vishvananda/netlink"
)

// The objects homeport owns on the shaping interface. Every handle is
// derived from the port layout and a slot, so reconciling compares exact
// handles and never parses names.
//
//	qdisc  4850:                 HTB root ("HP"), no default class: unclassified
//	                             traffic takes HTB's direct queue, unshaped
//	class  4850:<slot+1>         one per limited home, rate = ceil = the limit
//	filter parent 4850: prio 10  u32, protocol ip, tables below
//
// u32 filter layout (b = log2 of the tunnel block, n = port >> b is a
// block number; lo = min(8, 16-b) low bits of n pick a bucket in a level-2
// table, the hi = 16-b-lo bits above them a bucket in a level-1 table):
//
//	800::1        TCP, first fragment: skip the IP header (eat), link 1:
//	1:            divisor 1
//	  1::1        link 2:, hash on the hi bits of the source port
//	  1::2        link 3:, hash on the hi bits of the destination port
//	2:, 3:        level 1, divisor 2^hi (source, destination)
//	  2:k:1       high bits == k: link 100+k:, hash on the lo bits of sport
//	  3:k:1       the same for dport, link 200+k:
//	100+k:        level 2, divisor 2^lo, for source ports
//	  100+k:j:1   sport in the block (k<<lo|j)<<b: classid 4850:<slot+1>
//	200+k:        the same for destination ports
//	  200+k:j:1   dport in the block: classid 4850:<slot+1>
//
// Level-1 and level-2 buckets together spell out the whole block number, so
// every bucket holds at most one leaf, and a packet visits at most six nodes
// (a key comparison or two each, and a hash per level) whether one home or
// thousands are limited. Tables and links exist for the buckets the
// tunnel range touches; leaves only for limited homes. A leaf compares the
// whole block too, so a hashing mistake could only leave traffic unshaped,
// never charge it to another home.
const (
	rootMajor  = 0x4850
	filterPrio = 10

	tcpHTID      = 0x001 // after the IP header
	sportL1HTID  = 0x002
	dportL1HTID  = 0x003
	sportL2HTID0 = 0x100 // + level-1 bucket
	dportL2HTID0 = 0x200
	rootHTID     = 0x800 // the kernel's own root table of a u32 filter

	maxSlots = 0xffff // class minors 1..0xffff
)

// Root is the handle of homeport's HTB root qdisc.
func Root() uint32 { return netlink.MakeHandle(rootMajor, 0) }

// ClassID is the handle of the class of slot.
func ClassID(slot int) uint32 { return netlink.MakeHandle(rootMajor, uint16(slot+1)) }

// Ports is where the homes' tunnel ports are: slot i owns the aligned block
// Base+i*Block .. Base+(i+1)*Block-1.
type Ports struct {
	Base, Block, Slots int
}

// Validate checks that blocks are aligned powers of two inside the port
// space, and that every slot has a class handle.
func (p Ports) Validate() error {
	switch {
	case p.Block < 1 || p.Block > 1<<15 || bits.OnesCount(uint(p.Block)) != 1:
		return fmt.Errorf("tunnel block must be a power of two up to 32768, got %d", p.Block)
	case p.Base < 0 || p.Base%p.Block != 0:
		return fmt.Errorf("tunnel port base %d must be a multiple of the block size %d", p.Base, p.Block)
	case p.Slots < 1 || p.Slots > maxSlots:
		return fmt.Errorf("slots must be 1..%d, got %d", maxSlots, p.Slots)
	case p.Base+p.Slots*p.Block > 1<<16:
		return fmt.Errorf("%d slots of %d ports from %d pass port 65535", p.Slots, p.Block, p.Base)
	}
	return nil
}

// checkSlot refuses a slot outside the layout.
func (p Ports) checkSlot(slot int) error {
	if slot < 0 || slot >= p.Slots {
		return fmt.Errorf("slot %d is out of range 0..%d", slot, p.Slots-1)
	}
	return nil
}

// hashBits splits a block number into the bits level 2 hashes (lo) and the
// bits above them level 1 hashes (hi); b is log2(Block).
func (p Ports) hashBits() (b, lo, hi int) {
	b = bits.TrailingZeros(uint(p.Block))
	lo = min(8, 16-b)
	return b, lo, 16 - b - lo
}

// buckets is the range of level-1 buckets the tunnel range touches.
func (p Ports) buckets() (first, last int) {
	b, lo, _ := p.hashBits()
	return p.Base >> (b + lo), (p.Base + p.Slots*p.Block - 1) >> (b + lo)
}

// place is the level-1 bucket k and level-2 bucket j of slot's block.
func (p Ports) place(slot int) (k, j int) {
	b, lo, _ := p.hashBits()
	n := (p.Base + slot*p.Block) >> b
	return n >> lo, n & (1<<lo - 1)
}

// direction says which half of the first 32-bit word of the TCP header a
// filter reads: the source port (high half) or the destination port.
type direction struct {
	shift  int // 16 for the source port, 0 for the destination port
	l1HTID uint32
	l2HTID uint32 // + level-1 bucket
}

// directions are the source port (home -> visitor), then the destination
// port (visitor -> home).
func directions() [2]direction {
	return [2]direction{
		{shift: 16, l1HTID: sportL1HTID, l2HTID: sportL2HTID0},
		{shift: 0, l1HTID: dportL1HTID, l2HTID: dportL2HTID0},
	}
}

// portBits is the mask of port bits [from, to) in d's half of the word.
func (d direction) portBits(from, to int) uint32 {
	if from >= to {
		return 0
	}
	return uint32((1<<(to-from))-1) << (from + d.shift)
}

// u32Handle is a u32 handle: table, bucket and node.
func u32Handle(htid uint32, bucket int, node uint32) uint32 {
	return htid<<20 | uint32(bucket)<<12 | node
}

// key is one 32-bit comparison: (word at off & mask) == val, host order.
type key struct {
	mask, val    uint32
	off, offMask int32
}

// selector is the fixed part of a u32 node's selector (tc_u32_sel).
type selector struct {
	flags    uint8
	offShift uint8
	offMask  uint16
	off      uint16
	offOff   int16
	hoff     int16
	hmask    uint32 // the bits that pick a bucket of the linked table
}

// filter is one u32 object homeport creates: a hash table (divisor > 0) or
// a node in a bucket of a table.
type filter struct {
	handle  uint32 // htid<<20 | bucket<<12 | node
	divisor uint32 // tables only
	link    uint32 // nodes: the table a match descends into (htid<<20)
	classID uint32 // leaves: the class a match selects
	sel     selector
	keys    []key
}

func (f filter) isTable() bool { return f.handle&0xfffff == 0 }

func (f filter) equal(g filter) bool {
	return f.handle == g.handle && f.divisor == g.divisor && f.link == g.link && f.classID == g.classID &&
		f.sel == g.sel && slices.Equal(f.keys, g.keys)
}

func (f filter) String() string {
	if f.isTable() {
		return fmt.Sprintf("u32 table %x: divisor %d", f.handle>>20, f.divisor)
	}
	return fmt.Sprintf("u32 %x:%x:%x", f.handle>>20, (f.handle>>12)&0xff, f.handle&0xfff)
}

// structure is every table and link of the layout, tables first (a link
// needs its table), in the order they are created.
func (p Ports) structure() []filter {
	_, lo, hi := p.hashBits()
	first, last := p.buckets()
	fs := []filter{
		{handle: u32Handle(tcpHTID, 0, 0), divisor: 1},
		{handle: u32Handle(sportL1HTID, 0, 0), divisor: 1 << hi},
		{handle: u32Handle(dportL1HTID, 0, 0), divisor: 1 << hi},
	}
	for _, d := range directions() {
		for k := first; k <= last; k++ {
			fs = append(fs, filter{handle: u32Handle(d.l2HTID+uint32(k), 0, 0), divisor: 1 << lo})
		}
	}
	// 800::1: IPv4 protocol TCP (byte 9) in the first fragment (offset bits
	// of bytes 6-7 zero); then skip IHL*4 bytes.
	fs = append(fs, filter{
		handle: u32Handle(rootHTID, 0, 1), link: u32Handle(tcpHTID, 0, 0),
		// offset at 0 mask 0x0f00 shift 6 eat: IHL (32-bit words) * 4 bytes.
		sel:  selector{flags: netlink.TC_U32_VAROFFSET | netlink.TC_U32_EAT, offMask: 0x0f00, offShift: 6},
		keys: []key{{mask: 0x00ff0000, val: 0x00060000, off: 8}, {mask: 0x00001fff, val: 0, off: 4}},
	})
	for i, d := range directions() {
		fs = append(fs, filter{
			handle: u32Handle(tcpHTID, 0, uint32(i+1)), link: u32Handle(d.l1HTID, 0, 0),
			sel: selector{hmask: p.highBits(d)}, keys: []key{{}},
		})
	}
	b, _, _ := p.hashBits()
	for _, d := range directions() {
		for k := first; k <= last; k++ {
			fs = append(fs, filter{
				handle: u32Handle(d.l1HTID, k, 1), link: u32Handle(d.l2HTID+uint32(k), 0, 0),
				sel:  selector{hmask: d.portBits(b, b+lo)},
				keys: []key{{mask: p.highBits(d), val: uint32(k) << (b + lo + d.shift)}},
			})
		}
	}
	return fs
}

// highBits is the mask of the port bits level 1 hashes on (0 when one
// level-2 table covers every port).
func (p Ports) highBits(d direction) uint32 {
	b, lo, _ := p.hashBits()
	return d.portBits(b+lo, 16)
}

// leaves are the two filters that send slot's traffic to its class: its
// block as source port (home -> visitor) and as destination port (visitor
// -> home).
func (p Ports) leaves(slot int) []filter {
	b, _, _ := p.hashBits()
	k, j := p.place(slot)
	start := uint32(p.Base + slot*p.Block)
	fs := make([]filter, 0, 2)
	for _, d := range directions() {
		fs = append(fs, filter{
			handle: u32Handle(d.l2HTID+uint32(k), j, 1), classID: ClassID(slot), sel: selector{flags: netlink.TC_U32_TERMINAL},
			keys: []key{{mask: d.portBits(b, 16), val: start << d.shift}},
		})
	}
	return fs
}

// toNetlink is f as netlink sends it on the device linkIndex.
func (f filter) toNetlink(linkIndex int) *netlink.U32 {
	u := &netlink.U32{FilterAttrs: netlink.FilterAttrs{
		LinkIndex: linkIndex, Parent: Root(), Priority: filterPrio, Protocol: protocolIP, Handle: f.handle,
	}}
	if f.isTable() {
		u.Divisor = f.divisor
		return u
	}
	u.Hash = f.handle &^ 0xfff // the table and bucket the node goes into
	u.Link, u.ClassId = f.link, f.classID
	u.Sel = &netlink.TcU32Sel{
		Flags: f.sel.flags, Offshift: f.sel.offShift, Offmask: f.sel.offMask, Off: f.sel.off,
		Offoff: f.sel.offOff, Hoff: f.sel.hoff, Hmask: f.sel.hmask,
	}
	for _, k := range f.keys {
		u.Sel.Keys = append(u.Sel.Keys, netlink.TcU32Key{Mask: k.mask, Val: k.val, Off: k.off, OffMask: k.offMask})
	}
	return u
}

// fromNetlink reads a u32 object the kernel reported into the form
// homeport compares.
func fromNetlink(u *netlink.U32) filter {
	f := filter{handle: u.Handle, divisor: u.Divisor}
	if f.isTable() {
		return f
	}
	f.link, f.classID = u.Link, u.ClassId
	if s := u.Sel; s != nil {
		f.sel = selector{flags: s.Flags, offShift: s.Offshift, offMask: s.Offmask, off: s.Off, offOff: s.Offoff, hoff: s.Hoff, hmask: s.Hmask}
		for _, k := range s.Keys[:min(int(s.Nkeys), len(s.Keys))] {
			f.keys = append(f.keys, key{mask: k.Mask, val: k.Val, off: k.Off, offMask: k.OffMask})
		}
	}
	return f
}
