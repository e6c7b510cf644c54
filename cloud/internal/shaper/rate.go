package shaper

import (
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
)

// Limits a home may have, in kbit/s (the API's range).
const (
	MinKbps = 100
	MaxKbps = 10_000_000
)

const (
	// burstTime is how much traffic, in time at the limit, a class may send
	// at once: enough to ride over timer and scheduling delays at high rates.
	burstTime = 4 * time.Millisecond
	// minBurst is one largest loopback packet (64 KiB with GSO): a smaller
	// bucket could never send it without running into debt.
	minBurst = 64 << 10
	// quantum is set explicitly so HTB does not derive one from the rate
	// (and warn about it); with rate = ceil no class ever borrows, so it
	// only needs to cover one packet.
	quantum = 64 << 10
)

// ValidateKbps checks a limit before it reaches the kernel.
func ValidateKbps(kbps int64) error {
	if kbps < MinKbps || kbps > MaxKbps {
		return fmt.Errorf("bandwidth limit %d kbit/s is out of range %d..%d", kbps, MinKbps, MaxKbps)
	}
	return nil
}

// bytesPerSecond is kbps in the unit HTB takes.
func bytesPerSecond(kbps int64) uint64 { return uint64(kbps) * 1000 / 8 }

// Burst is the token bucket, in bytes, of a class limited to kbps:
// burstTime of traffic at the limit, and at least one largest packet.
func Burst(kbps int64) uint32 {
	b := bytesPerSecond(kbps) * uint64(burstTime) / uint64(time.Second)
	return uint32(max(b, minBurst))
}

// class is an HTB class as homeport creates it: rate = ceil, buffer =
// cbuffer (in the kernel's scheduler ticks, as HTB takes them).
type class struct {
	handle uint32
	rate   uint64 // bytes/s
	buffer uint32 // ticks
}

// classFor is the class of slot limited to kbps. ticks converts a burst at
// a rate into scheduler ticks (netlink.Xmittime, which reads the kernel's
// clock from /proc/net/psched).
func classFor(slot int, kbps int64, ticks func(rate uint64, size uint32) uint32) (class, error) {
	if err := ValidateKbps(kbps); err != nil {
		return class{}, err
	}
	rate := bytesPerSecond(kbps)
	buffer := ticks(rate, Burst(kbps))
	if buffer == 0 {
		return class{}, fmt.Errorf("cannot size the burst of %d kbit/s: the kernel's scheduler clock (/proc/net/psched) is unknown", kbps)
	}
	return class{handle: ClassID(slot), rate: rate, buffer: buffer}, nil
}

func (c class) equal(k *netlink.HtbClass) bool {
	return c.handle == k.Handle && c.rate == k.Rate && c.rate == k.Ceil && c.buffer == k.Buffer &&
		c.buffer == k.Cbuffer && k.Quantum == quantum && k.Level == 0 && k.Prio == 0
}

func (c class) toNetlink(linkIndex int) *netlink.HtbClass {
	return &netlink.HtbClass{
		ClassAttrs: netlink.ClassAttrs{LinkIndex: linkIndex, Parent: Root(), Handle: c.handle},
		Rate:       c.rate, Ceil: c.rate, Buffer: c.buffer, Cbuffer: c.buffer, Quantum: quantum,
	}
}
