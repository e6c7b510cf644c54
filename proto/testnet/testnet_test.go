package testnet

import "testing"

// TestReservationsNeverOverlap: ranges reserved at once (by this or any
// other test process) are disjoint even though none is bound yet; picking
// ports that are merely free let parallel test processes choose the same
// tunnel ports and one cloud's HAProxy failed to bind.
func TestReservationsNeverOverlap(t *testing.T) {
	var got []struct{ first, last int }
	for i := 0; i < 60; i++ {
		r := FreeRange(t, 40, 1)
		for _, o := range got {
			if r.First <= o.last && o.first <= r.Last {
				t.Fatalf("reservation %v overlaps %d-%d", r, o.first, o.last)
			}
		}
		got = append(got, struct{ first, last int }{r.First, r.Last})
	}
}
