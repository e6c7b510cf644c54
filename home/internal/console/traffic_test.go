package console

import "testing"

func TestSize(t *testing.T) {
	for n, want := range map[float64]string{0: "0 B", 9: "9 B", 999: "999 B", 1000: "1.0 kB", 2_500_000: "2.5 MB", 9_960: "10 kB", 310e9: "310 GB", 2e18: "2000 PB"} {
		if got := size(n); got != want {
			t.Errorf("size(%v) = %q, want %q", n, got, want)
		}
	}
}
