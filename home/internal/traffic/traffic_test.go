package traffic

import (
	"slices"
	"testing"
	"time"
)

// add counts in and out bytes on forward key's counter, as the gateway
// does.
func add(r *Recorder, key string, in, out uint64) {
	r.Counter(key).Add(in, out)
}

func TestStatsFollowTheCounters(t *testing.T) {
	r := New(10*time.Second, 6)
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r.Sample(t0) // the first sample: the counters' start
	add(r, "tcp:10001", 1000, 5000)
	add(r, "https://app.example.com", 7, 7)
	r.Sample(t0.Add(10 * time.Second))
	add(r, "tcp:10001", 2000, 0)
	r.Sample(t0.Add(20 * time.Second))

	st := r.Stats("tcp:10001", t0.Add(25*time.Second))
	if st.In != 3000 || st.Out != 5000 {
		t.Errorf("totals %d in, %d out; want 3000, 5000", st.In, st.Out)
	}
	if st.RateIn != 200 || st.RateOut != 0 {
		t.Errorf("rates %v in, %v out; want 200 B/s (the last 10 s), 0", st.RateIn, st.RateOut)
	}
	// Six steps ending with the current one; each holds what its sample
	// found, in bytes per second.
	if want := []float64{0, 0, 0, 0, 100, 200}; !slices.Equal(st.HourIn, want) {
		t.Errorf("in series %v, want %v", st.HourIn, want)
	}
	if want := []float64{0, 0, 0, 0, 500, 0}; !slices.Equal(st.HourOut, want) {
		t.Errorf("out series %v, want %v", st.HourOut, want)
	}
	if !st.End.Equal(t0.Add(30*time.Second)) || !st.Start().Equal(t0.Add(-30*time.Second)) {
		t.Errorf("series from %v to %v", st.Start(), st.End)
	}
	if other := r.Stats("https://app.example.com", t0.Add(25*time.Second)); other.In != 7 || other.HourIn[4] != 0.7 {
		t.Errorf("the other forward: %+v", other)
	}

	// A sample is current for one step; after that the rate is 0, and
	// steps older than the ring's span are gone, not wrapped around.
	later := r.Stats("tcp:10001", t0.Add(45*time.Second))
	if later.RateIn != 0 {
		t.Errorf("rate %v 25 s after the last sample, want 0", later.RateIn)
	}
	if want := []float64{0, 0, 100, 200, 0, 0}; !slices.Equal(later.HourIn, want) {
		t.Errorf("in series later %v, want %v", later.HourIn, want)
	}
	add(r, "tcp:10001", 600, 0)
	r.Sample(t0.Add(90 * time.Second)) // a lap later: the old slots are stale
	if got, want := r.Stats("tcp:10001", t0.Add(90*time.Second)).HourIn, []float64{0, 0, 0, 0, 0, 60}; !slices.Equal(got, want) {
		t.Errorf("in series a lap later %v, want %v", got, want)
	}
}

func TestKeepForgetsRemovedForwards(t *testing.T) {
	r := New(0, 0)
	add(r, "tcp:1", 1, 1)
	c := r.Counter("tcp:2")
	r.Keep([]string{"tcp:2"})
	if st := r.Stats("tcp:1", time.Now()); st.In != 0 || len(st.HourIn) != DefaultSteps {
		t.Errorf("a removed forward still has %+v", st)
	}
	if r.Counter("tcp:2") != c {
		t.Error("a kept forward got a new counter: its traffic so far would be lost")
	}
}
