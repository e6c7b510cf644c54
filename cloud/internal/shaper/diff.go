package shaper

import (
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"
)

// desired is what the kernel should hold under homeport's root qdisc.
type desired struct {
	classes   []class
	structure []filter // tables and links (Ports.structure)
	leaves    []filter // two per limited home
}

// observed is what the kernel holds under homeport's root qdisc.
type observed struct {
	classes []*netlink.HtbClass
	filters []filter // u32, protocol ip, at filterPrio
	others  []tp     // any other filter: not homeport's
}

// tp names a whole filter (a kind at one priority and protocol), which the
// kernel deletes in one go.
type tp struct {
	prio, protocol uint16
	kind           string
}

// plan is what one reconcile changes, in this order: classes are set before
// the leaves that select them and deleted after, because HTB refuses to
// delete a class a filter still points at.
type plan struct {
	setClasses []class  // add or change
	dropTPs    []tp     // foreign filters under the root
	rebuild    bool     // delete homeport's u32 filter whole, then add every filter
	delFilters []filter // nodes, before any add
	addFilters []filter // tables before nodes
	delClasses []uint32
}

// changes is how many objects the plan touches (the repairs metric).
func (p plan) changes() int {
	n := len(p.setClasses) + len(p.dropTPs) + len(p.delFilters) + len(p.addFilters) + len(p.delClasses)
	if p.rebuild {
		n++
	}
	return n
}

// diff compares the kernel with what it should hold. A table or link that
// is missing, different or unknown means the tree itself drifted (or the
// layout changed): the filter is rebuilt whole. Leaves and classes are
// repaired one by one.
func diff(want desired, have observed) plan {
	var p plan
	haveClass := map[uint32]*netlink.HtbClass{}
	for _, c := range have.classes {
		haveClass[c.Handle] = c
	}
	wantClass := map[uint32]bool{}
	for _, c := range want.classes {
		wantClass[c.handle] = true
		if k, ok := haveClass[c.handle]; !ok || !c.equal(k) {
			p.setClasses = append(p.setClasses, c)
		}
	}
	for _, c := range have.classes {
		if !wantClass[c.Handle] {
			p.delClasses = append(p.delClasses, c.Handle)
		}
	}
	slices.Sort(p.delClasses)
	p.dropTPs = have.others

	haveFilter := map[uint32]filter{}
	for _, f := range have.filters {
		haveFilter[f.handle] = f
	}
	wantFilter := map[uint32]bool{u32Handle(rootHTID, 0, 0): true}
	for _, f := range want.structure {
		wantFilter[f.handle] = true
		if g, ok := haveFilter[f.handle]; !ok || !f.equal(g) {
			p.rebuild = true
		}
	}
	for _, f := range have.filters {
		if f.isTable() && !wantFilter[f.handle] {
			p.rebuild = true
		}
	}
	if p.rebuild {
		p.addFilters = append(slices.Clone(want.structure), want.leaves...)
		return p
	}
	for _, f := range want.leaves {
		wantFilter[f.handle] = true
		g, ok := haveFilter[f.handle]
		if ok && !f.equal(g) {
			p.delFilters = append(p.delFilters, g)
		}
		if !ok || !f.equal(g) {
			p.addFilters = append(p.addFilters, f)
		}
	}
	for _, f := range have.filters {
		if !wantFilter[f.handle] {
			p.delFilters = append(p.delFilters, f)
		}
	}
	return p
}

// rootAction is what to do with the interface's root qdisc.
type rootAction int

const (
	rootKeep     rootAction = iota // homeport's and needed: compare what is below it
	rootNone                       // not needed and not homeport's: nothing to do
	rootCreate                     // needed; the interface has the kernel's default
	rootRecreate                   // homeport's handle with the wrong kind or default class
	rootDelete                     // homeport's and no home is limited any more
)

// decideRoot chooses what to do with root (nil when the interface has none)
// when want says whether some home is limited. A root qdisc that neither the
// kernel nor homeport created is the operator's: it is never replaced.
func decideRoot(root netlink.Qdisc, want bool, dev string) (rootAction, error) {
	switch {
	case root == nil || root.Attrs().Handle == 0:
		if want {
			return rootCreate, nil
		}
		return rootNone, nil
	case root.Attrs().Handle == Root():
		htb, ok := root.(*netlink.Htb)
		switch {
		case !want:
			return rootDelete, nil
		case !ok || htb.Defcls != 0:
			return rootRecreate, nil
		}
		return rootKeep, nil
	case want:
		return 0, fmt.Errorf("%s already has a root qdisc %s %s that homeport did not create: remove it (tc qdisc del dev %s root) or shape another interface",
			dev, root.Type(), handleString(root.Attrs().Handle), dev)
	}
	return rootNone, nil
}
