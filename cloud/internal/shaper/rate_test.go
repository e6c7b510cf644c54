package shaper

import (
	"strings"
	"testing"
)

func TestBurstCoversOnePacketAndFourMilliseconds(t *testing.T) {
	tests := []struct {
		kbps int64
		want uint32
	}{
		{100, 65536},           // 12.5 kB/s: one 64 KiB packet
		{5000, 65536},          // 5 Mbit/s
		{50000, 65536},         // 50 Mbit/s: 4 ms is 25 kB
		{200000, 100000},       // 200 Mbit/s: 4 ms is 100 kB
		{1000000, 500000},      // 1 Gbit/s
		{10_000_000, 5000_000}, // 10 Gbit/s
	}
	for _, tt := range tests {
		if got := Burst(tt.kbps); got != tt.want {
			t.Errorf("Burst(%d) = %d, want %d", tt.kbps, got, tt.want)
		}
	}
}

func TestClassForValidatesAndSizesTheBuffer(t *testing.T) {
	ticks := func(rate uint64, size uint32) uint32 { return uint32(uint64(size) * 1_000_000 / rate) } // µs
	c, err := classFor(4, 8000, ticks)
	if err != nil {
		t.Fatal(err)
	}
	if c.handle != ClassID(4) || c.rate != 1_000_000 || c.buffer != 65536 {
		t.Errorf("classFor(4, 8000) = %+v, want 1 MB/s and a 65.536 ms buffer on 4850:5", c)
	}
	if c, err := classFor(0, MaxKbps, ticks); err != nil || c.rate != 1_250_000_000 || c.buffer != 4000 {
		t.Errorf("classFor(0, max) = %+v, %v", c, err)
	}
	for _, kbps := range []int64{MinKbps - 1, MaxKbps + 1, 0, -5} {
		if _, err := classFor(1, kbps, ticks); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("classFor(%d) = %v, want out of range", kbps, err)
		}
	}
	if _, err := classFor(1, 5000, func(uint64, uint32) uint32 { return 0 }); err == nil {
		t.Errorf("a zero buffer (unknown kernel clock) reached the kernel")
	}
}

func TestValidateDevice(t *testing.T) {
	for _, ok := range []string{"lo", "eth0", "br-0a1b2c", "veth.100", "enp0s31f6", "abcdefghijklmno"} {
		if err := ValidateDevice(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "abcdefghijklmnop", "eth0 ", "a/b", "a:1", "lo\n", "ét0", "a;b"} {
		if ValidateDevice(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
