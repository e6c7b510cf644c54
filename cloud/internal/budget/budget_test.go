package budget_test

import (
	"errors"
	"testing"

	"homeport.dev/cloud/internal/budget"
)

func reason(err error) budget.Reason {
	var r *budget.Refusal
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

func TestChannelBudgets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits budget.Limits
		// opens is a sequence of (home, conn); want is the reason of each
		// refusal ("" = granted).
		opens [][2]uint64
		want  []budget.Reason
	}{
		{"per home across connections", budget.Limits{ChannelsPerHome: 2, ChannelsPerConn: 2, Total: 100},
			[][2]uint64{{1, 10}, {1, 11}, {1, 11}, {2, 20}}, []budget.Reason{"", "", budget.HomeChannels, ""}},
		{"per connection", budget.Limits{ChannelsPerHome: 4, ChannelsPerConn: 1, Total: 100},
			[][2]uint64{{1, 10}, {1, 10}, {1, 11}}, []budget.Reason{"", budget.ConnChannels, ""}},
		{"edge total", budget.Limits{ChannelsPerHome: 4, Total: 3},
			[][2]uint64{{1, 10}, {2, 20}, {3, 30}, {4, 40}}, []budget.Reason{"", "", "", budget.EdgeChannels}},
		{"per-conn above per-home is capped", budget.Limits{ChannelsPerHome: 1, ChannelsPerConn: 9, Total: 100},
			[][2]uint64{{1, 10}, {1, 10}}, []budget.Reason{"", budget.HomeChannels}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := budget.New(tc.limits)
			for i, o := range tc.opens {
				_, err := b.Channel(o[0], o[1])
				if got := reason(err); got != tc.want[i] {
					t.Errorf("open %d (home %d conn %d): refusal %q, want %q (err %v)", i, o[0], o[1], got, tc.want[i], err)
				}
			}
		})
	}
}

// TestReleaseGivesBack: a released channel makes room again, a double
// release counts once, and an idle home holds nothing.
func TestReleaseGivesBack(t *testing.T) {
	b := budget.New(budget.Limits{ChannelsPerHome: 1, PendingPerHome: 1})
	rel, err := b.Channel(7, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Channel(7, 1); reason(err) != budget.HomeChannels {
		t.Fatalf("second channel: %v", err)
	}
	rel()
	rel()
	if b.Total() != 0 {
		t.Fatalf("total after double release = %d", b.Total())
	}
	rel2, err := b.Channel(7, 1)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	rel2()
	p, err := b.Pending(7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Pending(7); reason(err) != budget.Pending {
		t.Fatalf("second pending: %v", err)
	}
	p()
	if c, pe := b.Usage(7); c != 0 || pe != 0 {
		t.Fatalf("usage after releases = %d channels, %d pending", c, pe)
	}
}

func TestEdgeChannelsKeepsAReserve(t *testing.T) {
	for _, tc := range []struct {
		limit       uint64
		homes       int
		wantAtMost  int
		wantAtLeast int
	}{
		// 1,000 homes on the shipped units' limit: room for every home's 64.
		{262144, 1000, 262144 - 1000*(16+32+2), 64 * 1000},
		// A small limit: the reserve comes first, but every home keeps one.
		{4096, 10, 4096 - 2*1024 - 256, 1},
		{1024, 100, 100, 100},
	} {
		got := budget.EdgeShare(tc.limit, tc.homes, 16, 32, 32)
		if got > tc.wantAtMost || got < tc.wantAtLeast {
			t.Errorf("EdgeShare(%d, %d homes) = %d, want %d..%d", tc.limit, tc.homes, got, tc.wantAtLeast, tc.wantAtMost)
		}
	}
}
