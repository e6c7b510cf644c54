package shaper

import (
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestDiff(t *testing.T) {
	p := Ports{Base: 20000, Block: 16, Slots: 10}
	ticks := func(rate uint64, size uint32) uint32 { return size }
	c2, _ := classFor(2, 5000, ticks)
	c5, _ := classFor(5, 50000, ticks)
	kernelClass := func(c class) *netlink.HtbClass { return c.toNetlink(1) }
	want := desired{classes: []class{c2, c5}, structure: p.structure(), leaves: append(p.leaves(2), p.leaves(5)...)}
	inSync := observed{
		classes: []*netlink.HtbClass{kernelClass(c2), kernelClass(c5)},
		filters: append(append([]filter{{handle: u32Handle(rootHTID, 0, 0), divisor: 1}}, want.structure...), want.leaves...),
	}
	with := func(fs []filter, more ...filter) []filter { return append(slices.Clone(fs), more...) }
	without := func(fs []filter, handle uint32) []filter {
		var out []filter
		for _, f := range fs {
			if f.handle != handle {
				out = append(out, f)
			}
		}
		return out
	}
	slower := kernelClass(c2)
	slower.Rate, slower.Ceil = 1000, 1000
	stale, _ := classFor(7, 100, ticks)
	wrongLeaf := p.leaves(5)[0]
	wrongLeaf.classID = ClassID(2)

	tests := map[string]struct {
		have observed
		want string // the plan, summarised
	}{
		"in sync":            {inSync, ""},
		"empty kernel":       {observed{}, "set 4850:3 set 4850:6 rebuild add 14"},
		"class rate drifted": {observed{classes: []*netlink.HtbClass{slower, kernelClass(c5)}, filters: inSync.filters}, "set 4850:3"},
		"class missing":      {observed{classes: []*netlink.HtbClass{kernelClass(c5)}, filters: inSync.filters}, "set 4850:3"},
		"stale class":        {observed{classes: append(slices.Clone(inSync.classes), kernelClass(stale)), filters: inSync.filters}, "del 4850:8"},
		"leaf missing": {observed{classes: inSync.classes, filters: without(inSync.filters, p.leaves(2)[1].handle)},
			"add u32 204:e4:1"},
		"leaf selects another class": {observed{classes: inSync.classes, filters: with(without(inSync.filters, wrongLeaf.handle), wrongLeaf)},
			"del u32 104:e7:1 add u32 104:e7:1"},
		"stale leaf": {observed{classes: inSync.classes, filters: with(inSync.filters, p.leaves(7)...)},
			"del u32 104:e9:1 del u32 204:e9:1"},
		"link missing": {observed{classes: inSync.classes, filters: without(inSync.filters, u32Handle(tcpHTID, 0, 2))},
			"rebuild add 14"},
		"unknown table": {observed{classes: inSync.classes, filters: with(inSync.filters, filter{handle: u32Handle(0x555, 0, 0), divisor: 4})},
			"rebuild add 14"},
		"table of another size": {observed{classes: inSync.classes, filters: with(without(inSync.filters, u32Handle(sportL1HTID, 0, 0)), filter{handle: u32Handle(sportL1HTID, 0, 0), divisor: 32})},
			"rebuild add 14"},
		"foreign filter": {observed{classes: inSync.classes, filters: inSync.filters, others: []tp{{prio: 1, protocol: protocolIP, kind: "u32"}}},
			"drop u32 prio 1"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			pl := diff(want, tt.have)
			if got := summary(pl); got != tt.want {
				t.Errorf("plan = %q, want %q", got, tt.want)
			}
			if (tt.want == "") != (pl.changes() == 0) {
				t.Errorf("changes = %d for plan %q", pl.changes(), tt.want)
			}
		})
	}
}

func summary(p plan) string {
	var s []string
	for _, c := range p.setClasses {
		s = append(s, "set "+handleString(c.handle))
	}
	for _, t := range p.dropTPs {
		s = append(s, "drop "+t.kind+" prio "+itoa(int(t.prio)))
	}
	if p.rebuild {
		s = append(s, "rebuild add "+itoa(len(p.addFilters)))
	} else {
		for _, f := range p.delFilters {
			s = append(s, "del "+f.String())
		}
		for _, f := range p.addFilters {
			s = append(s, "add "+f.String())
		}
	}
	for _, c := range p.delClasses {
		s = append(s, "del "+handleString(c))
	}
	return strings.Join(s, " ")
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func TestDecideRoot(t *testing.T) {
	htb := func(handle uint32, defcls uint32) netlink.Qdisc {
		q := netlink.NewHtb(netlink.QdiscAttrs{Handle: handle, Parent: netlink.HANDLE_ROOT})
		q.Defcls = defcls
		return q
	}
	kernelDefault := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{Handle: 0, Parent: netlink.HANDLE_ROOT}, QdiscType: "noqueue"}
	operators := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{Handle: netlink.MakeHandle(0x8001, 0), Parent: netlink.HANDLE_ROOT}, QdiscType: "fq"}
	tests := []struct {
		name    string
		root    netlink.Qdisc
		limited bool
		want    rootAction
		err     bool
	}{
		{"none, nothing limited", nil, false, rootNone, false},
		{"none, a home limited", nil, true, rootCreate, false},
		{"kernel default, nothing limited", kernelDefault, false, rootNone, false},
		{"kernel default, a home limited", kernelDefault, true, rootCreate, false},
		{"ours, a home limited", htb(Root(), 0), true, rootKeep, false},
		{"ours, nothing limited", htb(Root(), 0), false, rootDelete, false},
		{"ours with a default class", htb(Root(), 3), true, rootRecreate, false},
		{"our handle, another kind", &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{Handle: Root()}, QdiscType: "pfifo"}, true, rootRecreate, false},
		{"the operator's, nothing limited", operators, false, rootNone, false},
		{"the operator's, a home limited", operators, true, 0, true},
		{"the operator's htb, a home limited", htb(netlink.MakeHandle(1, 0), 0), true, 0, true},
	}
	for _, tt := range tests {
		got, err := decideRoot(tt.root, tt.limited, "lo")
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("%s: %v, %v; want %v (error %v)", tt.name, got, err, tt.want, tt.err)
		}
	}
}
